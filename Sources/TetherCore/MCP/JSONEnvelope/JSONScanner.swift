/// A forward-only cursor that validates one JSON document (RFC 8259) without
/// building it.
///
/// Each `scan…`/`skip…` method consumes one element of the grammar and throws
/// at the first byte that doesn't fit. Reading past the end yields 0, a byte
/// valid nowhere in JSON, so input that ends too early fails like any other
/// unexpected byte, at offset `bytes.count`.
struct JSONScanner {
    typealias Failure = JSONRPCEnvelopeReader.Failure

    /// The content of a scanned string, between its quotes, as it is in the input.
    struct StringToken {
        var range: Range<Int>
        var hasEscapes: Bool
    }

    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The byte at `position`, or 0 at the end.
    var current: UInt8 {
        position < bytes.count ? bytes[position] : 0
    }

    /// Throws unless the current byte is `expected`, else consumes it.
    mutating func consume(_ expected: UInt8) throws(Failure) {
        guard current == expected else { throw .invalidJSON(offset: position) }
        position += 1
    }

    mutating func skipWhitespace() {
        while position < bytes.count, ASCII.isWhitespace(bytes[position]) {
            position += 1
        }
    }
}

// MARK: - Values of any kind

extension JSONScanner {
    /// Consumes one value of any kind, `depth` containers deep.
    ///
    /// Containers are walked iteratively with their kinds on a
    /// `ContainerStack`, so hostile nesting can exhaust neither the call stack
    /// nor the heap: it stops at `maximumDepth`.
    mutating func skipValue(depth: Int) throws(Failure) {
        var open = ContainerStack()
        nextValue: while true {
            if current == ASCII.openBrace || current == ASCII.openBracket {
                guard depth + open.count < JSONRPCEnvelopeReader.maximumDepth else {
                    throw .tooDeep(offset: position)
                }
                let isObject = current == ASCII.openBrace
                position += 1
                skipWhitespace()
                if current != (isObject ? ASCII.closeBrace : ASCII.closeBracket) {
                    open.push(isObject: isObject)
                    if isObject {
                        _ = try scanMemberName()
                    }
                    continue nextValue
                }
                position += 1
            } else {
                try skipScalar()
            }
            while !open.isEmpty {
                let isObject = open.innermostIsObject
                if try continuesContainer(closedBy: isObject ? ASCII.closeBrace : ASCII.closeBracket) {
                    if isObject {
                        _ = try scanMemberName()
                    }
                    continue nextValue
                }
                open.pop()
            }
            return
        }
    }

    /// After a member or element: consumes a `,` and the whitespace after it
    /// and returns `true`, or consumes `closer` and returns `false`.
    /// RFC 8259 has no trailing commas, so after a `,` another member or
    /// element must follow.
    mutating func continuesContainer(closedBy closer: UInt8) throws(Failure) -> Bool {
        skipWhitespace()
        switch current {
        case ASCII.comma:
            position += 1
            skipWhitespace()
            return true
        case closer:
            position += 1
            return false
        default:
            throw .invalidJSON(offset: position)
        }
    }

    /// Consumes a member's name and its `:`, leaving the scanner at the value.
    mutating func scanMemberName() throws(Failure) -> StringToken {
        guard current == ASCII.quote else { throw .invalidJSON(offset: position) }
        let name = try scanString()
        skipWhitespace()
        try consume(ASCII.colon)
        skipWhitespace()
        return name
    }

    /// Consumes a string, number, `true`, `false` or `null`.
    private mutating func skipScalar() throws(Failure) {
        switch current {
        case ASCII.quote: _ = try scanString()
        case ASCII.minus, ASCII.digits: _ = try scanNumber()
        case ASCII.lowercaseT: try scanLiteral("true")
        case ASCII.lowercaseF: try scanLiteral("false")
        case ASCII.lowercaseN: try scanLiteral("null")
        default: throw .invalidJSON(offset: position)
        }
    }

    private mutating func scanLiteral(_ literal: StaticString) throws(Failure) {
        for byte in UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount) {
            try consume(byte)
        }
    }
}

// MARK: - Strings

extension JSONScanner {
    /// Consumes a string at its opening quote, validating its UTF-8 and its
    /// escapes without decoding it.
    mutating func scanString() throws(Failure) -> StringToken {
        position += 1
        let start = position
        var hasEscapes = false
        while true {
            switch current {
            case ASCII.quote:
                position += 1
                return StringToken(range: start..<position - 1, hasEscapes: hasEscapes)
            case ASCII.backslash:
                hasEscapes = true
                try scanEscape()
            case 0x20..<0x80:
                position += 1
            case 0x80...:
                try scanMultibyteCharacter()
            default:
                // A control character must be escaped (RFC 8259 §7); or the input ended.
                throw .invalidJSON(offset: position)
            }
        }
    }

    /// Consumes an escape at its backslash.
    ///
    /// A `\u` escape of a UTF-16 lead surrogate must be followed by one of a
    /// trail surrogate, and a trail surrogate may appear only there: JSON text
    /// is Unicode, and an unpaired surrogate is no character at all.
    private mutating func scanEscape() throws(Failure) {
        let escape = position
        position += 1
        guard current == ASCII.lowercaseU else {
            guard ASCII.unescaped(current) != nil else { throw .invalidJSON(offset: position) }
            position += 1
            return
        }
        position += 1
        let unit = try scanHexQuad()
        guard !UTF16.isTrailSurrogate(unit) else { throw .invalidJSON(offset: escape) }
        guard UTF16.isLeadSurrogate(unit) else { return }
        let trailEscape = position
        try consume(ASCII.backslash)
        try consume(ASCII.lowercaseU)
        guard UTF16.isTrailSurrogate(try scanHexQuad()) else { throw .invalidJSON(offset: trailEscape) }
    }

    /// Consumes the four hexadecimal digits of a `\u` escape.
    private mutating func scanHexQuad() throws(Failure) -> UInt16 {
        var unit: UInt16 = 0
        for _ in 0..<4 {
            guard let digit = ASCII.hexValue(current) else { throw .invalidJSON(offset: position) }
            unit = unit << 4 | UInt16(digit)
            position += 1
        }
        return unit
    }

    /// Consumes one multi-byte UTF-8 character at its lead byte, accepting only
    /// well-formed sequences (Unicode §3.9, table 3-7): no overlong forms, no
    /// encoded UTF-16 surrogates, nothing above U+10FFFF, nothing cut short.
    private mutating func scanMultibyteCharacter() throws(Failure) {
        let (continuations, second): (Int, ClosedRange<UInt8>) =
            switch current {
            case 0xC2...0xDF: (1, 0x80...0xBF)
            case 0xE0: (2, 0xA0...0xBF)
            case 0xE1...0xEC, 0xEE...0xEF: (2, 0x80...0xBF)
            case 0xED: (2, 0x80...0x9F)
            case 0xF0: (3, 0x90...0xBF)
            case 0xF1...0xF3: (3, 0x80...0xBF)
            case 0xF4: (3, 0x80...0x8F)
            default: throw .invalidJSON(offset: position)
            }
        position += 1
        guard second.contains(current) else { throw .invalidJSON(offset: position) }
        position += 1
        for _ in 1..<continuations {
            guard (0x80...0xBF).contains(current) else { throw .invalidJSON(offset: position) }
            position += 1
        }
    }
}

// MARK: - Numbers

extension JSONScanner {
    /// Consumes a number (RFC 8259 §6: no leading zeros, no `+`, digits on
    /// both sides of a `.`, digits in an exponent) and returns where it lies.
    mutating func scanNumber() throws(Failure) -> Range<Int> {
        let start = position
        if current == ASCII.minus {
            position += 1
        }
        if current == ASCII.zero {
            position += 1
        } else {
            try scanDigits()
        }
        if current == ASCII.dot {
            position += 1
            try scanDigits()
        }
        if current == ASCII.lowercaseE || current == ASCII.uppercaseE {
            position += 1
            if current == ASCII.plus || current == ASCII.minus {
                position += 1
            }
            try scanDigits()
        }
        return start..<position
    }

    /// Consumes one or more digits.
    private mutating func scanDigits() throws(Failure) {
        guard ASCII.digits.contains(current) else { throw .invalidJSON(offset: position) }
        repeat {
            position += 1
        } while ASCII.digits.contains(current)
    }
}
