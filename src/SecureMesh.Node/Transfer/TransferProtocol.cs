namespace SecureMesh.Node.Transfer;

/// <summary>The libp2p protocol IDs of SecureMesh's own protocols, negotiated per stream with multistream-select.</summary>
public static class TransferProtocol
{
    /// <summary>
    /// The transfer session: one long-lived stream per connection, opened by the dialler, carrying the wire messages of
    /// <see cref="Core.Wire.WireCodec"/> (hello, manifest, have, chunk, cancel, and search for older callers) each way.
    /// </summary>
    public const string Transfer = "/securemesh/transfer/1.0.0";

    /// <summary>A catalog search: a stream per search carrying one search request and its answer.</summary>
    public const string Search = "/securemesh/search/1.0.0";
}
