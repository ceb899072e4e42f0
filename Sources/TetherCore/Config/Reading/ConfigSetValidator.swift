/// Checks what no single document can: that names are unique, references
/// resolve in the state that would result, and resources agree with each other.
///
/// ```swift
/// let problems = ConfigSetValidator.validate(applying: parsed, over: stored)
/// ```
public enum ConfigSetValidator {
    public struct Options: Sendable {
        /// Offline validation of a partial config: references to resources
        /// that are not in the set are allowed (the server checks them).
        public var allowUnresolvedReferences = false

        public init(allowUnresolvedReferences: Bool = false) {
            self.allowUnresolvedReferences = allowUnresolvedReferences
        }
    }

    /// Problems with applying `applied` and deleting `deleting` on top of
    /// `stored`, the current state.
    public static func validate(
        applying applied: [ParsedResource],
        deleting: Set<ResourceID> = [],
        over stored: [ResourceID: Resource],
        options: Options = Options()
    ) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        var firstDefinition: [ResourceID: ParsedResource] = [:]
        for parsed in applied {
            if let earlier = firstDefinition[parsed.resource.id] {
                let at = earlier.location.map { " (first at \($0))" } ?? ""
                diagnostics.append(ConfigDiagnostic(location: parsed.location, resource: parsed.resource.id.description, field: "metadata.name", message: "is defined twice\(at); keep one definition"))
            } else {
                firstDefinition[parsed.resource.id] = parsed
            }
        }

        var result = stored
        for id in deleting { result[id] = nil }
        for parsed in applied { result[parsed.resource.id] = parsed.resource }

        for parsed in applied {
            let resource = parsed.resource
            for reference in resource.references where result[reference.target] == nil && !options.allowUnresolvedReferences {
                let deleted = deleting.contains(reference.target) ? " (it is being deleted)" : ""
                diagnostics.append(parsed.diagnostic(field: reference.field, "\(reference.target.kind.rawValue) \"\(reference.target.name)\" does not exist\(deleted); define it in the applied files or apply it first"))
            }
            diagnostics += checkAgreement(parsed, in: result, stored: stored, options: options)
        }

        // Deleting something that remaining resources still use would leave
        // them dangling.
        let appliedIDs = Set(applied.map(\.resource.id))
        for (id, resource) in result.sorted(by: { $0.key < $1.key }) where !appliedIDs.contains(id) {
            for reference in resource.references where deleting.contains(reference.target) {
                diagnostics.append(ConfigDiagnostic(location: nil, resource: reference.target.description, field: nil, message: "is still referenced by \(id) (\(reference.field)); change or delete \(id) first"))
            }
        }
        return diagnostics
    }

    static func checkAgreement(_ parsed: ParsedResource, in result: [ResourceID: Resource], stored: [ResourceID: Resource], options: Options) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        switch parsed.resource.spec {
        case .route(let route):
            if let name = route.tokenExchange, case .tokenExchange(let exchange)? = result[ResourceID(.tokenExchange, name)]?.spec,
                exchange.type == .builtin || exchange.type == .rfc8693, route.identityProvider == nil
            {
                diagnostics.append(parsed.diagnostic(field: "spec.tokenExchange", "token exchange \"\(name)\" (\(exchange.type.rawValue)) exchanges the user's token, so the route needs spec.identityProvider to validate it"))
            }
            for (id, other) in result.sorted(by: { $0.key < $1.key }) where id != parsed.resource.id {
                guard case .route(let otherRoute) = other.spec, otherRoute.path == route.path else { continue }
                let overlap = route.agents.first { mine in otherRoute.agents.contains(where: mine.overlaps) }
                if let overlap {
                    diagnostics.append(parsed.diagnostic(field: "spec.path", "path \(route.path) is also used by \(id) for agents matching \(overlap); give one route another path or make their agents disjoint"))
                }
            }
        case .credential(let credential):
            if credential.value == nil, stored[parsed.resource.id] == nil, !options.allowUnresolvedReferences {
                diagnostics.append(parsed.diagnostic(field: "spec.value", "missing required field \"value\" for a new credential (it may only be left out to keep the value of an existing one)"))
            }
        case .trustBundle:
            diagnostics.append(parsed.diagnostic(field: "kind", "TrustBundle is published by the control plane from its CA and JWT-SVID key; it cannot be applied"))
        case .tokenExchange, .mcpBackend, .identityProvider, .authorizationPolicy:
            break
        }
        return diagnostics
    }
}
