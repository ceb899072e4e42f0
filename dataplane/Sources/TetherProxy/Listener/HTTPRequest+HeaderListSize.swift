import HTTPTypes

extension HTTPRequest {
    /// The size of this request's header section as HTTP/2 measures it
    /// against SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2): each field's
    /// name and value in octets plus 32, pseudo-headers included. Listeners
    /// apply the same measure to HTTP/1.1 requests, so one limit means the
    /// same on every hop.
    var headerListSize: Int {
        func field(_ name: Int, _ value: String?) -> Int {
            value.map { name + $0.utf8.count + 32 } ?? 0
        }
        var size = field(7, method.rawValue) + field(7, scheme) + field(10, authority) + field(5, path)
        for field in headerFields {
            size += field.name.rawName.utf8.count + field.value.utf8.count + 32
        }
        return size
    }
}
