import ArgumentParser
import Foundation
import TetherCore

/// `-f FILE|DIR|-`, repeatable: the config sources to send.
struct SourceOptions: ParsableArguments {
    @Option(name: [.customShort("f"), .long], help: ArgumentHelp("A YAML/JSON file, a directory of them (*.yaml, *.yml, *.json), or - for standard input. Repeatable.", valueName: "path"))
    var filename: [String] = []

    func read() throws -> [ConfigSource] {
        guard !filename.isEmpty else {
            throw CLIError("give the config with -f FILE, -f DIR or -f -")
        }
        var sources: [ConfigSource] = []
        for path in filename {
            sources += try Self.read(path)
        }
        return sources
    }

    static func read(_ path: String) throws -> [ConfigSource] {
        if path == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return [ConfigSource(name: "<stdin>", text: try text(data, from: "<stdin>"))]
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("cannot read \(path): no such file or directory")
        }
        if isDirectory.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw CLIError("cannot list \(path): \(error.localizedDescription)")
            }
            let configs = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") }.sorted()
            guard !configs.isEmpty else { throw CLIError("\(path) has no *.yaml, *.yml or *.json files") }
            return try configs.flatMap { try read("\(path.hasSuffix("/") ? String(path.dropLast()) : path)/\($0)") }
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read \(path): permission denied or not a regular file")
        }
        return [ConfigSource(name: path, text: try text(data, from: path))]
    }

    static func text(_ data: Data, from name: String) throws -> String {
        guard let text = String(data: data, encoding: .utf8) else {
            throw CLIError("\(name) is not UTF-8 text")
        }
        return text
    }
}
