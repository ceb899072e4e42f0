extension JSONScanner {
    /// Reads a whole document: the envelope of a top-level object, or the
    /// failure that says why there is none. A batch or scalar is validated to
    /// its end first, so that broken JSON is always reported as such.
    mutating func readDocument() throws(Failure) -> JSONRPCEnvelope {
        skipByteOrderMark()
        skipWhitespace()
        let first = current
        var envelope: JSONRPCEnvelope?
        if first == ASCII.openBrace {
            envelope = try readEnvelope()
        } else {
            try skipValue(depth: 0)
        }
        skipWhitespace()
        guard position == bytes.count else { throw .invalidJSON(offset: position) }
        guard let envelope else { throw first == ASCII.openBracket ? .batch : .notAnObject }
        return envelope
    }

    /// RFC 8259 §8.1 lets a parser ignore a leading UTF-8 byte order mark;
    /// Foundation's `JSONSerialization` does, and so does this reader.
    private mutating func skipByteOrderMark() {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            position = 3
        }
    }

    /// Reads the top-level object at its `{`, keeping the members of interest.
    /// A member that occurs again replaces what the earlier one set.
    private mutating func readEnvelope() throws(Failure) -> JSONRPCEnvelope {
        var envelope = JSONRPCEnvelope()
        try forEachMember { scanner, name throws(Failure) in
            switch name {
            case .jsonrpc: envelope.jsonrpc = try scanner.readSummary(depth: 1)
            case .id: envelope.id = try scanner.readSummary(depth: 1)
            case .method: envelope.method = try scanner.readSummary(depth: 1)
            case .params: try scanner.readParams(into: &envelope)
            case .result:
                envelope.hasResult = true
                try scanner.skipValue(depth: 1)
            case .error:
                envelope.hasError = true
                try scanner.skipValue(depth: 1)
            case .name, .uri, nil:
                try scanner.skipValue(depth: 1)
            }
        }
        return envelope
    }

    /// Reads the value of a `params` member. Its name and uri come from this
    /// occurrence only, so an earlier `params` can't leak into a later one.
    private mutating func readParams(into envelope: inout JSONRPCEnvelope) throws(Failure) {
        envelope.paramsName = nil
        envelope.paramsURI = nil
        guard current == ASCII.openBrace else {
            envelope.params = try readSummary(depth: 1)
            return
        }
        envelope.params = .other(.object)
        // At depth 2, far below `maximumDepth`, so opening it needs no check.
        try forEachMember { scanner, name throws(Failure) in
            switch name {
            case .name: envelope.paramsName = try scanner.readSummary(depth: 2)
            case .uri: envelope.paramsURI = try scanner.readSummary(depth: 2)
            default: try scanner.skipValue(depth: 2)
            }
        }
    }

    /// Walks the object at its `{`, handing `visit` each member's name (`nil`
    /// for names of no interest) with the scanner at the member's value, which
    /// `visit` must consume.
    private mutating func forEachMember(
        _ visit: (inout JSONScanner, MemberName?) throws(Failure) -> Void
    ) throws(Failure) {
        position += 1
        skipWhitespace()
        if current == ASCII.closeBrace {
            position += 1
            return
        }
        repeat {
            let name = try scanMemberName()
            try visit(&self, memberName(name))
        } while try continuesContainer(closedBy: ASCII.closeBrace)
    }

    /// Reads a value of any kind, keeping strings and integers, and only the
    /// kind of anything else.
    private mutating func readSummary(depth: Int) throws(Failure) -> JSONRPCEnvelope.Value {
        switch current {
        case ASCII.quote:
            return .string(string(of: try scanString()))
        case ASCII.minus, ASCII.digits:
            let number = try scanNumber()
            return integerValue(ofNumberIn: number).map { .integer($0) } ?? .other(.number)
        case let first:
            try skipValue(depth: depth)
            return .other(Self.kind(of: first))
        }
    }

    /// The kind of a validated container or literal, from its first byte.
    private static func kind(of first: UInt8) -> JSONRPCEnvelope.Value.Kind {
        switch first {
        case ASCII.openBrace: .object
        case ASCII.openBracket: .array
        case ASCII.lowercaseN: .null
        default: .bool
        }
    }
}
