/// A secret (a PAT, an OAuth client secret) that proxies use on an agent's
/// behalf. Write-only: the control plane seals the value on apply and never
/// returns it.
public struct CredentialSpec: Hashable, Sendable, Codable {
    public var description: String?
    /// Absent in anything read back from the control plane. Absent in an
    /// apply, it keeps the stored value (so `get -o yaml | apply -f -` works).
    public var value: CredentialValue?

    public init(description: String? = nil, value: CredentialValue?) {
        self.description = description
        self.value = value
    }
}

/// A credential's secret as operators write it, or as the store keeps it.
public enum CredentialValue: Hashable, Sendable, Codable, CustomStringConvertible {
    case plaintext(String)
    case sealed(SealedSecret)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let sealed = try? container.decode(SealedSecret.self) {
            self = .sealed(sealed)
        } else {
            self = .plaintext(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .plaintext(let text): try container.encode(text)
        case .sealed(let sealed): try container.encode(sealed)
        }
    }

    /// Never the secret itself, so an accidental interpolation leaks nothing.
    public var description: String { "<redacted>" }
}

/// A credential value encrypted at rest: an AEAD box bound to the
/// credential's name, and a keyed digest so unchanged values are recognised
/// without decrypting.
public struct SealedSecret: Hashable, Sendable, Codable {
    /// Base64 of nonce ‖ ciphertext ‖ tag.
    public var box: String
    /// Base64 HMAC-SHA256 of the value under a key derived from the sealing key.
    public var digest: String

    public init(box: String, digest: String) {
        self.box = box
        self.digest = digest
    }
}

extension CredentialSpec {
    init?(reading spec: MappingReader) {
        let description = spec.optional("description") { $0.string() }
        let value = spec.optional("value") { node -> String? in
            guard let value = node.string() else { return nil }
            guard !value.isEmpty else {
                // Say nothing about the value itself: it is a secret.
                node.report("must not be empty")
                return nil
            }
            guard value.utf8.count <= 64 * 1024 else {
                node.report("is longer than 64 KiB")
                return nil
            }
            return value
        }
        self.init(description: description, value: value.map(CredentialValue.plaintext))
    }
}
