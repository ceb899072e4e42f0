import ArgumentParser
import Foundation
import TetherControlPlane

/// A failure reported to the operator as `error: …` with exit code 1 (or
/// `exitCode`), never a stack trace.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32 = 1

    init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }
}

/// Runs a CLI action, printing failures kubectl-style and exiting non-zero.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ControlPlaneError {
        printError("error: \(error.message)")
        for diagnostic in error.diagnostics {
            printError("  \(diagnostic)")
        }
        throw ExitCode(1)
    } catch let error as CLIError {
        printError("error: \(error.description)")
        throw ExitCode(error.exitCode)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
