// Turning scanned tokens into values. Everything here works on tokens the
// scanner has already validated, so none of it can fail.

// MARK: - Strings

extension JSONScanner {
    /// The `String` a scanned string stands for.
    func string(of token: StringToken) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[token.range])
        guard token.hasEscapes else { return String(decoding: raw, as: UTF8.self) }
        // Unescaping never lengthens a string: every escape is at least as long
        // as the UTF-8 it stands for, so the raw length is enough capacity.
        return String(unsafeUninitializedCapacity: raw.count) { buffer in
            var count = 0
            unescape(token) { byte in
                buffer[count] = byte
                count += 1
            }
            return count
        }
    }

    /// The member a scanned name stands for, or `nil` for one of no interest.
    /// A name without escapes is compared as it is in the input; only one with
    /// escapes is unescaped first, and neither allocates.
    func memberName(_ token: StringToken) -> MemberName? {
        var name = PackedName()
        if token.hasEscapes {
            unescape(token) { name.append($0) }
        } else {
            guard token.range.count <= PackedName.capacity else { return nil }
            for offset in token.range {
                name.append(bytes[offset])
            }
        }
        return MemberName(name)
    }

    /// Hands `emit` the UTF-8 a scanned string stands for, escapes resolved.
    private func unescape(_ token: StringToken, _ emit: (UInt8) -> Void) {
        var offset = token.range.lowerBound
        while offset < token.range.upperBound {
            let byte = bytes[offset]
            guard byte == ASCII.backslash else {
                emit(byte)
                offset += 1
                continue
            }
            let escaped = bytes[offset + 1]
            offset += 2
            guard escaped == ASCII.lowercaseU else {
                emit(ASCII.unescaped(escaped) ?? escaped)
                continue
            }
            var scalar = UInt32(hexQuad(at: offset))
            offset += 4
            if UTF16.isLeadSurrogate(UInt16(scalar)) {
                // The scanner made sure a `\u` trail surrogate follows.
                let trail = UInt32(hexQuad(at: offset + 2))
                offset += 6
                scalar = 0x10000 + (scalar - 0xD800) << 10 + (trail - 0xDC00)
            }
            UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}", into: emit)
        }
    }

    /// The code unit spelled by the four hexadecimal digits at `offset`.
    private func hexQuad(at offset: Int) -> UInt16 {
        (offset..<offset + 4).reduce(0) { unit, offset in
            unit << 4 | UInt16(ASCII.hexValue(bytes[offset]) ?? 0)
        }
    }
}

// MARK: - Numbers

extension JSONScanner {
    /// The value of a scanned number if it is integral and fits `Int64`.
    ///
    /// Worked out exactly from the decimal digits rather than through
    /// `Double`, so 9007199254740993 keeps its last digit and 1.5e1 is 15: the
    /// digits from the first nonzero one to the last (at most 19 of them, or
    /// the value can't be both integral and in range) times the power of ten
    /// that the fraction, the exponent and any trailing zeros leave.
    func integerValue(ofNumberIn range: Range<Int>) -> Int64? {
        var offset = range.lowerBound
        let isNegative = bytes[offset] == ASCII.minus
        if isNegative {
            offset += 1
        }
        var significand: UInt64 = 0
        var significantDigits = 0
        var pendingZeros = 0  // zeros after the last nonzero digit, not in `significand` yet
        var fractionDigits = 0
        var inFraction = false
        while offset < range.upperBound, bytes[offset] != ASCII.lowercaseE, bytes[offset] != ASCII.uppercaseE {
            let byte = bytes[offset]
            offset += 1
            if byte == ASCII.dot {
                inFraction = true
                continue
            }
            if inFraction {
                fractionDigits += 1
            }
            if byte == ASCII.zero {
                pendingZeros += significand == 0 ? 0 : 1
                continue
            }
            significantDigits += pendingZeros + 1
            guard significantDigits <= 19 else { return nil }
            for _ in 0..<pendingZeros {
                significand *= 10
            }
            significand = significand * 10 + UInt64(byte - ASCII.zero)
            pendingZeros = 0
        }
        guard significand != 0 else { return 0 }
        let exponent = exponent(in: offset..<range.upperBound, clampedTo: range.count + 20)
        let scale = exponent + pendingZeros - fractionDigits
        guard scale >= 0, significantDigits + scale <= 19 else { return nil }
        for _ in 0..<scale {
            significand *= 10
        }
        if isNegative {
            return significand <= Int64.min.magnitude ? Int64(truncatingIfNeeded: 0 &- significand) : nil
        }
        return Int64(exactly: significand)
    }

    /// The exponent of a number, from its `e` on (0 when there is none),
    /// clamped to ±`limit`. With a limit 20 beyond the number's length, the
    /// clamp can't change whether the value is an integer in range, while
    /// exponents of any length are read without overflowing.
    private func exponent(in range: Range<Int>, clampedTo limit: Int) -> Int {
        guard !range.isEmpty else { return 0 }
        var digits = range.dropFirst()
        let sign = bytes[digits.lowerBound]
        if sign == ASCII.minus || sign == ASCII.plus {
            digits = digits.dropFirst()
        }
        let magnitude = digits.reduce(0) { magnitude, offset in
            min(magnitude * 10 + Int(bytes[offset] - ASCII.zero), limit)
        }
        return sign == ASCII.minus ? -magnitude : magnitude
    }
}
