namespace SecureMesh.Core.Libp2p.Relay;

/// <summary>
/// Circuit relay v2's protocol IDs and message framing (relay/circuit-v2.md): every message is one protobuf prefixed by
/// its length as an unsigned varint, at most <see cref="MaxMessageSize"/> bytes; a longer length is refused before
/// anything is allocated. After the last message of a successful CONNECT, the stream carries the relayed connection.
/// </summary>
public static class CircuitRelay
{
    /// <summary>The hop protocol: reservations and circuits, client to relay.</summary>
    public const string HopProtocolId = "/libp2p/circuit/relay/0.2.0/hop";

    /// <summary>The stop protocol: the relay hands a circuit to its target.</summary>
    public const string StopProtocolId = "/libp2p/circuit/relay/0.2.0/stop";

    /// <summary>Largest message read or written (go-libp2p and rust-libp2p use the same bound).</summary>
    public const int MaxMessageSize = 4096;

    /// <summary>Reads one hop message; throws <see cref="SecureMeshException"/> (Protocol) on a malformed, oversized or missing one.</summary>
    public static async Task<HopMessage> ReadHopAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxMessageSize, "hop message", cancellationToken).ConfigureAwait(false)
            ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the stream ended before a hop message");
        return HopMessage.Decode(bytes);
    }

    /// <summary>Reads one stop message; throws <see cref="SecureMeshException"/> (Protocol) on a malformed, oversized or missing one.</summary>
    public static async Task<StopMessage> ReadStopAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxMessageSize, "stop message", cancellationToken).ConfigureAwait(false)
            ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the stream ended before a stop message");
        return StopMessage.Decode(bytes);
    }

    /// <summary>Writes one hop message and flushes.</summary>
    public static ValueTask WriteAsync(Stream stream, HopMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        return LengthPrefixed.WriteAsync(stream, message.Encode(), cancellationToken);
    }

    /// <summary>Writes one stop message and flushes.</summary>
    public static ValueTask WriteAsync(Stream stream, StopMessage message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        return LengthPrefixed.WriteAsync(stream, message.Encode(), cancellationToken);
    }
}
