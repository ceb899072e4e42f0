import Foundation
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL store lives: `postgres://USER@HOST:PORT/DATABASE?sslmode=MODE&sslrootcert=FILE`.
///
/// The password never rides in the URL — a URL ends up in shell history,
/// `ps` output and unit files — but comes from a file (`--store-password-file`)
/// or the environment (`TETHER_STORE_PASSWORD`). `sslmode` means what it
/// means to libpq: `disable`, `prefer` (libpq's default: TLS if the server
/// offers it, unverified), `require` (TLS, unverified unless `sslrootcert`
/// is given), `verify-ca` (the server's chain against `sslrootcert`) and
/// `verify-full` (that, and the host name).
public struct PostgresLocation: Sendable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: SSLMode
    public var sslRootCertificate: String?
    public var password: String?

    /// Parses `url`; `what` names where it came from in errors (e.g. "--store").
    public init(url text: String, password: String?, what: String) throws(ControlPlaneError) {
        func bad(_ reason: String) -> ControlPlaneError {
            ControlPlaneError(.badRequest, "\(what) \(Self.redacted(text)): \(reason); expected postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full")
        }
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql" else {
            throw bad("not a postgres:// URL")
        }
        guard url.password == nil else {
            throw ControlPlaneError(.badRequest, "\(what) must not contain a password (it would show in process lists and shell history); put it in --store-password-file or TETHER_STORE_PASSWORD")
        }
        guard let host = url.host, !host.isEmpty else { throw bad("it names no host") }
        guard let user = url.user, !user.isEmpty else { throw bad("it names no user") }
        let database = String(url.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw bad("it names no database") }
        self.host = host
        self.port = url.port ?? 5432
        self.user = user
        self.database = database
        self.password = password
        var mode = SSLMode.prefer
        for item in url.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value.flatMap(SSLMode.init(rawValue:)) else {
                    throw bad("sslmode must be one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                mode = value
            case "sslrootcert":
                sslRootCertificate = item.value
            default:
                throw bad("unknown parameter \(item.name) (supported: sslmode, sslrootcert)")
            }
        }
        sslMode = mode
        if (mode == .verifyCA || mode == .verifyFull), sslRootCertificate == nil {
            throw bad("sslmode=\(mode.rawValue) needs sslrootcert=FILE, the CA that signed the server's certificate")
        }
    }

    /// The password from `file` (first line) or `TETHER_STORE_PASSWORD`.
    public static func password(file: String?, environment: [String: String]) throws(ControlPlaneError) -> String? {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ControlPlaneError(.badRequest, "--store-password-file \(file) cannot be read")
            }
            return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        }
        return environment["TETHER_STORE_PASSWORD"]
    }

    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    /// `text` with any password replaced, for error messages.
    static func redacted(_ text: String) -> String {
        guard var url = URLComponents(string: text), url.password != nil else { return text }
        url.password = "REDACTED"
        return url.string ?? "(unparsable URL)"
    }

    func clientConfiguration() throws(ControlPlaneError) -> PostgresClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let sslRootCertificate {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(sslRootCertificate))
            } catch {
                throw ControlPlaneError(.badRequest, "sslrootcert \(sslRootCertificate) is not a PEM certificate file: \(error)")
            }
        }
        let mode: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable:
            mode = .disable
        case .prefer, .require:
            if sslRootCertificate == nil { tls.certificateVerification = .none } else { tls.certificateVerification = .noHostnameVerification }
            mode = sslMode == .prefer ? .prefer(tls) : .require(tls)
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
            mode = .require(tls)
        case .verifyFull:
            tls.certificateVerification = .fullVerification
            mode = .require(tls)
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: mode)
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.maximumConnections = 16
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(10))
        return configuration
    }
}
