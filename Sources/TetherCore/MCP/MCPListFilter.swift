import Foundation

/// Removes from a listing's result (`tools/list`, `resources/list`,
/// `resources/templates/list`, `prompts/list`) every item the caller may
/// not use, so an agent never learns of tools it cannot call. A response
/// that loses nothing is left as it is: the proxy then forwards its
/// original bytes.
public enum MCPListFilter {
    /// The result array of each listing, the field naming an item, and how
    /// an item is used.
    struct Shape: Sendable {
        var array: String
        var key: String
        var target: @Sendable (String) -> MCPCall.Target
    }

    static let shapes: [String: Shape] = [
        "tools/list": Shape(array: "tools", key: "name") { .tool($0) },
        "resources/list": Shape(array: "resources", key: "uri") { .resource($0) },
        "resources/templates/list": Shape(array: "resourceTemplates", key: "uriTemplate") { .resource($0) },
        "prompts/list": Shape(array: "prompts", key: "name") { .prompt($0) },
    ]

    public static func isListing(_ method: String) -> Bool { shapes[method] != nil }

    /// The filtered JSON-RPC response, or nil when nothing is removed (or
    /// it is not a successful response to a listing).
    public static func filter(response: Data, method: String, keep: (MCPCall.Target) -> Bool) -> Data? {
        guard let shape = shapes[method],
            var object = (try? JSONSerialization.jsonObject(with: response)) as? [String: Any],
            var result = object["result"] as? [String: Any],
            let items = result[shape.array] as? [[String: Any]]
        else { return nil }
        // An item without its name is not shown: it could not be authorized.
        let kept = items.filter { item in (item[shape.key] as? String).map { keep(shape.target($0)) } ?? false }
        guard kept.count != items.count else { return nil }
        result[shape.array] = kept
        object["result"] = result
        return try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])
    }

    /// The same for one server-sent event: the re-serialized event when its
    /// data is a response that loses items, else nil (forward `event.raw`).
    public static func filter(event: ServerSentEventParser.Event, method: String, keep: (MCPCall.Target) -> Bool) -> [UInt8]? {
        guard event.type == nil || event.type == "message",
            let filtered = filter(response: Data(event.data.utf8), method: method, keep: keep)
        else { return nil }
        return ServerSentEventParser.Event.serialize(type: event.type, data: String(decoding: filtered, as: UTF8.self), id: event.id)
    }
}
