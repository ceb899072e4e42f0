import ArgumentParser
import Foundation
import Logging
import TetherControlPlane

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a single-machine control plane into PostgreSQL, for replicas to share.",
        discussion: """
            Copies the whole history, join tokens, certificate records, revocations and keys of \
            the (stopped) control plane in --from into the empty database --to, in one \
            transaction; keys are sealed under the key-encryption key. Proxies keep working \
            against the replicas without new tokens. A non-empty target is refused.

              head -c 32 /dev/urandom | base64 > kek && chmod 600 kek
              tether-control migrate --from ./tether-data --to 'postgres://tether@db:5432/tether?sslmode=verify-full&sslrootcert=db-ca.pem' \\
                --store-password-file pgpass --key-encryption-key-file kek
            """
    )

    @Option(help: ArgumentHelp("The data directory of the control plane to copy (stop it first).", valueName: "dir"))
    var from: String

    @Option(help: ArgumentHelp("The empty PostgreSQL database: postgres://USER@HOST:PORT/DB?sslmode=….", valueName: "url"))
    var to: String

    @Option(help: ArgumentHelp("File holding the PostgreSQL password (else $TETHER_STORE_PASSWORD).", valueName: "file"))
    var storePasswordFile: String?

    @Option(help: ArgumentHelp("The key-encryption key the replicas will be given (else $TETHER_KEY_ENCRYPTION_KEY).", valueName: "file"))
    var keyEncryptionKeyFile: String?

    func run() async throws {
        try await reportingErrors {
            let environment = ProcessInfo.processInfo.environment
            let location = try PostgresLocation(url: to, password: try PostgresLocation.password(file: storePasswordFile, environment: environment), what: "--to")
            let kek = try KeyEncryptionKey.load(file: keyEncryptionKeyFile, environment: environment)
            guard FileManager.default.fileExists(atPath: "\(from)/tether.db") else {
                throw CLIError("--from \(from) holds no tether.db; give the data directory of the control plane to copy")
            }
            let directory = try DataDirectory.prepare(path: from)
            let target = try await PostgresStore(location: location, logger: Logger(label: "tether-control"))
            defer { target.close() }
            let summary = try await StoreMigration.run(from: directory, to: target, kek: kek)
            print("copied \(summary.revisions) revisions (\(summary.resources) current resources), \(summary.joinTokens) join tokens, \(summary.certificates) certificate records, \(summary.revocations) revocations and keys \(summary.keys.joined(separator: ", ")) into \(location)")
        }
    }
}
