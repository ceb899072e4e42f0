import Testing

/// Every data-path suite, one test at a time: each starts a whole mesh (a
/// control plane, two proxies, the MCP SDK's server), which on a 2-core CI
/// machine is load enough for one.
@Suite("MCP data path", .serialized)
enum DataPathTests {}
