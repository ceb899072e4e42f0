import Foundation
import SwiftProtobuf
import Testing
import TetherCore
@testable import TetherXDS

@Suite("Resource coding")
struct ResourceCodingTests {
    @Test func everyResourceRoundTripsThroughItsMessage() throws {
        let resources = try fixtureResources()
        #expect(Set(resources.map(\.kind)) == Set(ResourceKind.allCases))
        for resource in resources {
            let any = ResourceCoding.any(resource)
            #expect(any.typeURL == "type.googleapis.com/tether.config.v1.\(resource.kind.rawValue)")
            #expect(try ResourceCoding.decode(any, name: resource.metadata.name) == resource)
        }
    }

    @Test func aFieldFromANewerSchemaIsRejected() throws {
        var route = Tether_Config_V1_Route()
        route.metadata.name = "github"
        route.agents = ["spiffe://example.org/agent/triage"]
        route.path = "/github"
        route.backend = "github"
        var bytes = try route.serializedData()
        // Field 42, varint 1: what a newer control plane might add.
        bytes.append(contentsOf: [0xD0, 0x02, 0x01] as [UInt8])  // tag (42 << 3) as a varint, value 1
        var any = Google_Protobuf_Any()
        any.typeURL = TetherTypes.typeURL(.route)
        any.value = bytes
        #expect(throws: ResourceDecodingError.self) { try ResourceCoding.decode(any, name: "github") }
        do { _ = try ResourceCoding.decode(any, name: "github") } catch {
            #expect(error.description == "Route/github: has field 42 that this proxy does not know (a newer control plane?); upgrade the proxy")
        }
    }

    @Test func theProxyAppliesTheControlPlanesValidation() throws {
        var route = Tether_Config_V1_Route()
        route.metadata.name = "github"
        route.agents = ["spiffe://Example.org/agent"]
        route.path = "github"
        route.backend = "github"
        var any = Google_Protobuf_Any()
        any.typeURL = TetherTypes.typeURL(.route)
        any.value = try route.serializedData()
        do {
            _ = try ResourceCoding.decode(any, name: "github")
            Issue.record("accepted an invalid route")
        } catch {
            #expect(error.description.contains("spec.agents[0]"))
            #expect(error.description.contains("spec.path"))
        }
        #expect(throws: ResourceDecodingError.self) { try ResourceCoding.decode(any, name: "other-name") }
    }

    @Test func unknownTypesAndEnumValuesAreRejected() throws {
        var any = Google_Protobuf_Any()
        any.typeURL = "type.googleapis.com/tether.config.v1.Gateway"
        #expect(throws: ResourceDecodingError.self) { try ResourceCoding.decode(any, name: "x") }
        var exchange = Tether_Config_V1_TokenExchange()
        exchange.metadata.name = "x"
        exchange.type = .UNRECOGNIZED(9)
        any.typeURL = TetherTypes.typeURL(.tokenExchange)
        any.value = try exchange.serializedData()
        #expect(throws: ResourceDecodingError.self) { try ResourceCoding.decode(any, name: "x") }
    }
}
