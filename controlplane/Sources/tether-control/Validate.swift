import ArgumentParser
import TetherCore

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check config files offline, without a running control plane.",
        discussion: """
            Runs every check apply runs, against the files alone: references must resolve \
            within them unless --partial is given.

              tether-control validate -f examples/mesh.yaml
              tether-control validate -f route-only.yaml --partial
            """
    )

    @OptionGroup var sources: SourceOptions
    @Flag(help: "Allow references to resources not in the files (they may exist on the server).")
    var partial = false

    func run() async throws {
        try await reportingErrors {
            let parsed: [ParsedResource]
            do {
                parsed = try ConfigParser.parse(try sources.read())
            } catch let error as ConfigValidationError {
                throw validationFailure(error.diagnostics)
            }
            let problems = ConfigSetValidator.validate(applying: parsed, over: [:], options: .init(allowUnresolvedReferences: partial))
            guard problems.isEmpty else { throw validationFailure(problems) }
            print("\(parsed.count) resource\(parsed.count == 1 ? "" : "s") valid")
        }
    }

    func validationFailure(_ diagnostics: [ConfigDiagnostic]) -> CLIError {
        let count = diagnostics.count
        return CLIError("the config has \(count) error\(count == 1 ? "" : "s")\n" + diagnostics.map { "  \($0)" }.joined(separator: "\n"))
    }
}
