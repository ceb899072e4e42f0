import Testing
import TetherCore
@testable import TetherProxy

/// `--control` lists the replicas; a stream that ends moves to the next.
@Suite("Control-plane addresses")
struct ControlPlaneAddressesTests {
    @Test func severalReplicasAreTriedInTurn() throws {
        let addresses = try ControlPlaneAddresses(parsing: "10.0.0.1:15012, cp.example:15012,[::1]:15012", what: "--control")
        #expect(addresses.all.map(\.description) == ["10.0.0.1:15012", "cp.example:15012", "[::1]:15012"])
        #expect(addresses.next(after: 0) == 1 && addresses.next(after: 2) == 0)
        #expect(try ControlPlaneAddresses(parsing: "127.0.0.1:1", what: "--control").next(after: 0) == 0)
    }

    @Test(arguments: ["", "cp.example", "10.0.0.1:15012,", "a:1,b"])
    func aBadEntryIsNamed(text: String) {
        #expect {
            try ControlPlaneAddresses(parsing: text, what: "--control")
        } throws: { error in
            "\(error)".contains("--control") && "\(error)".contains("is not host:port")
        }
    }
}
