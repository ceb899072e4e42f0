import Foundation
import Yams

/// The encodings of resources: canonical JSON (what the store keeps and
/// hashes: sorted keys, no insignificant whitespace, so equal configs are
/// equal bytes) and YAML/JSON for people.
public enum ConfigEncoding {
    public static func canonicalJSON(_ resource: Resource) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain value types into JSON cannot fail.
        return try! encoder.encode(resource)
    }

    public static func decode(canonicalJSON data: Data) throws -> Resource {
        try JSONDecoder().decode(Resource.self, from: data)
    }

    /// Resources as YAML documents separated by `---`, keys sorted, multi-line
    /// strings (PEM, JWKS) as literal blocks.
    public static func yaml(_ resources: [Resource]) -> String {
        let encoder = YAMLEncoder()
        encoder.options = .init(indent: 2, width: -1, allowUnicode: true, sortKeys: true, newLineScalarStyle: .literal)
        return resources.map { resource in
            // Encoding plain value types into YAML cannot fail.
            try! encoder.encode(resource)
        }.joined(separator: "---\n")
    }

    /// Pretty JSON: one object, or a JSON array for several.
    public static func json(_ resources: [Resource], single: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data = single && resources.count == 1 ? try! encoder.encode(resources[0]) : try! encoder.encode(resources)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
