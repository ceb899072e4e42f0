import NIOSSL

extension TLSConfiguration {
    /// TLS 1.2 cipher suites with forward secrecy and authenticated
    /// encryption only (ECDHE with AES-GCM or ChaCha20-Poly1305): no CBC
    /// suites with SHA-1 MACs, no static-RSA key exchange. TLS 1.3, which
    /// every Tether peer negotiates with another, has only AEAD suites.
    public static let aeadCipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// TLS 1.2 or later, AEAD suites only: what every TLS context Tether
    /// builds itself uses, server and client.
    public mutating func harden() {
        minimumTLSVersion = .tlsv12
        cipherSuiteValues = Self.aeadCipherSuites
    }
}
