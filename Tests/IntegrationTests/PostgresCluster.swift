import Foundation

/// A throwaway PostgreSQL 15 cluster (Debian's `postgresql-15`, which
/// `.ci/run` installs) on a free loopback port, for the tests of the HA
/// control plane: trust authentication as `tether`, a database `tether`,
/// fsync off. Stopped (`-m immediate`) and its directory removed when
/// released, so no test leaves a server running.
final class PostgresCluster: Sendable {
    // Sendable without @unchecked: every stored property is an immutable
    // value. The server's state lives in the data directory, and pg_ctl
    // serializes what happens to it.

    static let binDirectory = "/usr/lib/postgresql/15/bin"

    /// Whether the PostgreSQL 15 server binaries are installed. CI always
    /// installs them; a developer machine without them skips these tests.
    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: binDirectory + "/initdb") }

    /// The temporary directory holding the data directory (`data`), the
    /// server log (`log`) and the Unix socket.
    let root: URL
    let dataDirectory: String
    let logPath: String
    /// The TCP port on 127.0.0.1; the same across stop() and start().
    let port: Int
    /// The superuser, trusted without a password.
    let user = "tether"
    let database = "tether"

    /// What a client of the database (the control plane under test) is given.
    var url: String { "postgres://\(user)@127.0.0.1:\(port)/\(database)?sslmode=disable" }

    /// The server log, for error messages.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// initdb, start and `CREATE DATABASE`: about 1.3 s, nearly all initdb.
    init() throws {
        let root = Self.temporaryBase().appendingPathComponent("tether-pg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let port: Int
        do {
            port = try Self.create(root: root)
        } catch {
            Self.destroy(root: root)
            throw error
        }
        self.root = root
        dataDirectory = root.appendingPathComponent("data").path
        logPath = root.appendingPathComponent("log").path
        self.port = port
    }

    deinit {
        Self.destroy(root: root)
    }

    /// A clean shutdown (`pg_ctl stop -m fast`): clients are disconnected
    /// and further connections refused, as in a database outage.
    func stop() throws {
        try Self.pgCtl(["-D", dataDirectory, "-m", "fast", "-w", "stop"], root: root)
    }

    /// Starts the stopped server again on the same port and data directory,
    /// the end of a simulated outage. Fails if something else took the port
    /// in the meantime.
    func start() throws {
        try Self.launch(root: root, port: port)
    }

    /// Runs `sql` (one or more statements; stops at the first error) in
    /// `database` and returns what the queries return, as psql prints it
    /// unaligned and tuples-only: one row a line, fields separated by `|`, no
    /// command tags (`-q`), no trailing newline.
    func psql(_ sql: String) throws -> String {
        var output = try String(decoding: client(Self.binDirectory + "/psql", Self.psqlArguments(port: port, database: database, sql: sql)), as: UTF8.self)
        while output.hasSuffix("\n") { output.removeLast() }
        return output
    }

    /// The plain-format `pg_dump` of `database`: what an attacker with a copy
    /// of the database would read, for tests that search it for secrets.
    func dump() throws -> Data {
        try client(Self.binDirectory + "/pg_dump", ["-h", "127.0.0.1", "-p", "\(port)", "-U", user, database])
    }

    private func client(_ executable: String, _ arguments: [String]) throws -> Data {
        let result = try Self.run(executable, arguments, in: root)
        guard result.status == 0 else {
            throw IntegrationError("\(result.commandLine) exited with status \(result.status):\n\(result.stderr)\nserver log (tail):\n\(Self.tail(of: logPath))")
        }
        return result.stdout
    }

    // MARK: - Creating and destroying

    /// initdb, then start on a free port — a new one if another process took
    /// it between freePort() and the server's bind (at most 3 tries) — then
    /// `CREATE DATABASE`. Returns the port.
    private static func create(root: URL) throws -> Int {
        if geteuid() == 0 {
            // initdb refuses to run as root: the cluster belongs to `postgres`.
            guard let account = getpwnam("postgres") else {
                throw IntegrationError("running as root, but there is no postgres user to run initdb as (initdb refuses root)")
            }
            guard chown(root.path, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw IntegrationError("chown postgres \(root.path): \(String(cString: strerror(errno)))")
            }
        }
        // --no-locale -E UTF8: the same cluster whatever LANG the tests run with.
        let initdb = try run(
            binDirectory + "/initdb",
            ["-D", root.appendingPathComponent("data").path, "-A", "trust", "-U", "tether", "-E", "UTF8", "--no-locale", "--no-sync"],
            asPostgres: true, in: root
        )
        guard initdb.status == 0 else {
            throw IntegrationError("\(initdb.commandLine) exited with status \(initdb.status):\n\(initdb.stderr)\(String(decoding: initdb.stdout, as: UTF8.self))")
        }
        var attempt = 1
        while true {
            let port = freePort()
            do {
                try launch(root: root, port: port)
            } catch is PortInUse where attempt < 3 {
                attempt += 1
                continue
            }
            let result = try run(binDirectory + "/psql", psqlArguments(port: port, database: "postgres", sql: "CREATE DATABASE tether"), in: root)
            guard result.status == 0 else {
                throw IntegrationError("\(result.commandLine) exited with status \(result.status):\n\(result.stderr)")
            }
            return port
        }
    }

    /// Thrown by launch() when the server could not bind its port.
    private struct PortInUse: Error, CustomStringConvertible {
        var description: String
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    private static func launch(root: URL, port: Int) throws {
        let log = root.appendingPathComponent("log").path
        // The log is appended to across starts; only this start's part tells why it failed.
        let logOffset = (try? Data(contentsOf: URL(fileURLWithPath: log)))?.count ?? 0
        // pg_ctl hands -o to /bin/sh, hence the quotes. -k: the Unix socket
        // goes to our own directory, not /var/run/postgresql.
        let options = "-p \(port) -k '\(root.path)' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        do {
            try pgCtl(["-D", root.appendingPathComponent("data").path, "-l", log, "-w", "-o", options, "start"], root: root)
        } catch {
            let attemptLog = (try? Data(contentsOf: URL(fileURLWithPath: log)).dropFirst(logOffset)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if attemptLog.contains("Address already in use") {
                throw PortInUse(description: "PostgreSQL could not bind 127.0.0.1:\(port):\n\(attemptLog)")
            }
            throw error
        }
    }

    /// Runs pg_ctl as the cluster's owner; the error has its output and the
    /// end of the server log.
    private static func pgCtl(_ arguments: [String], root: URL) throws {
        let result = try run(binDirectory + "/pg_ctl", arguments, asPostgres: true, in: root)
        guard result.status == 0 else {
            throw IntegrationError(
                "\(result.commandLine) exited with status \(result.status):\n\(String(decoding: result.stdout, as: UTF8.self))\(result.stderr)\nserver log (tail):\n\(tail(of: root.appendingPathComponent("log").path))"
            )
        }
    }

    /// `pg_ctl stop -m immediate` if a server may be running, then removes the
    /// directory. Should pg_ctl fail, SIGKILL the postmaster its PID file
    /// names — a test must never leave a server behind.
    private static func destroy(root: URL) {
        let data = root.appendingPathComponent("data")
        let pidFile = data.appendingPathComponent("postmaster.pid")
        if FileManager.default.fileExists(atPath: pidFile.path) {
            _ = try? run(binDirectory + "/pg_ctl", ["-D", data.path, "-m", "immediate", "-w", "stop"], asPostgres: true, in: root)
            if let text = try? String(contentsOf: pidFile, encoding: .utf8),
                let pid = text.split(separator: "\n").first.flatMap({ Int32($0) }),
                // Only if that PID is still our postmaster, not a reused one.
                let commandLine = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
                String(decoding: commandLine, as: UTF8.self).contains(data.path)
            {
                kill(pid, SIGKILL)
            }
        }
        try? FileManager.default.removeItem(at: root)
    }

    /// As root the server runs as `postgres`, which must be able to reach its
    /// directory: when some ancestor of the temporary directory (TMPDIR) is
    /// not searchable by others, the cluster goes to /tmp instead.
    private static func temporaryBase() -> URL {
        let base = FileManager.default.temporaryDirectory
        guard geteuid() == 0 else { return base }
        var path = base.resolvingSymlinksInPath().path
        while !path.isEmpty {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & 0o001 != 0 else { return URL(fileURLWithPath: "/tmp") }
            if path == "/" { break }
            path = (path as NSString).deletingLastPathComponent
        }
        return base
    }

    // MARK: - Running the binaries

    private static func psqlArguments(port: Int, database: String, sql: String) -> [String] {
        ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", "tether", "-d", database, "-c", sql]
    }

    private struct Output {
        var commandLine: String
        var status: Int32
        var stdout: Data
        var stderr: String
    }

    /// Runs `executable ARGS` to completion in `directory` — as `postgres`
    /// through runuser when `asPostgres` and we are root — with output
    /// captured through files (pipes could fill and block).
    ///
    /// posix_spawn, not Foundation's Process: the child keeps only stdin,
    /// stdout and stderr. Process hands its child the socket by which it
    /// notices the exit; the postmaster pg_ctl leaves behind inherited it,
    /// and waitUntilExit() hung for as long as the server ran. Any other
    /// descriptor of the test process a postmaster kept (another test's
    /// pipe) would hang that test the same way.
    private static func run(_ executable: String, _ arguments: [String], asPostgres: Bool = false, in directory: URL) throws -> Output {
        var commandLine = [executable] + arguments
        if asPostgres, geteuid() == 0 {
            guard let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
                throw IntegrationError("running as root, but runuser (util-linux) is missing: initdb and pg_ctl must run as postgres")
            }
            commandLine = [runuser, "-u", "postgres", "--"] + commandLine
        }
        let name = UUID().uuidString
        let out = directory.appendingPathComponent("\(name).out"), err = directory.appendingPathComponent("\(name).err")
        let outFD = open(out.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let errFD = open(err.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer {
            if outFD >= 0 { close(outFD) }
            if errFD >= 0 { close(errFD) }
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        guard outFD >= 0, errFD >= 0 else { throw IntegrationError("cannot create \(out.path): \(String(cString: strerror(errno)))") }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        // Glibc's GNU extensions, which Swift's Glibc module leaves out.
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
        let libc = dlopen(nil, RTLD_NOW)
        if let symbol = dlsym(libc, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
        } else {
            // glibc before 2.34: close what is open now.
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
                if let fd = Int32(entry), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
            }
        }
        // Somewhere `postgres` may enter: run from /root, initdb and pg_ctl
        // complain that they cannot change back to it.
        if let symbol = dlsym(libc, "posix_spawn_file_actions_addchdir_np") {
            _ = unsafeBitCast(symbol, to: AddChdir.self)(&actions, directory.path)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No signal blocked or ignored by the test process carries over.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in Int32(1)..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        // PG* variables of the environment (PGSSLMODE, PGDATABASE, …) would
        // change what the command lines say; a hung server must not hang a test.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        environment["PGCONNECT_TIMEOUT"] = "10"
        let argv = commandLine.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, commandLine[0], &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw IntegrationError("cannot run \(commandLine[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw IntegrationError("waitpid \(commandLine[0]): \(String(cString: strerror(errno)))") }
        }
        return Output(
            commandLine: commandLine.joined(separator: " "),
            // The exit code, or 128 + the signal that killed it, as a shell says.
            status: status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f),
            stdout: (try? Data(contentsOf: out)) ?? Data(),
            stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        )
    }

    /// The last 20 lines of a file.
    private static func tail(of path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(separator: "\n")
    }
}
