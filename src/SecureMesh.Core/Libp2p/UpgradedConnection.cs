using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// A TCP connection after the libp2p upgrade: authenticated, encrypted, with its stream muxer chosen. Whoever holds it
/// starts the muxer (a yamux session) on <see cref="Stream"/>; disposing it closes the connection.
/// </summary>
public sealed class UpgradedConnection : IAsyncDisposable
{
    internal UpgradedConnection(NoiseStream stream, string muxer, bool muxerNegotiatedEarly, bool initiator)
    {
        Stream = stream;
        Muxer = muxer;
        MuxerNegotiatedEarly = muxerNegotiatedEarly;
        IsInitiator = initiator;
    }

    /// <summary>The authenticated Peer ID of the other side.</summary>
    public PeerId RemotePeerId => Stream.RemotePeerId;

    /// <summary>The secured duplex byte stream the muxer runs on.</summary>
    public NoiseStream Stream { get; }

    /// <summary>The chosen stream muxer's protocol ID, e.g. <c>/yamux/1.0.0</c>.</summary>
    public string Muxer { get; }

    /// <summary>True when the muxer was chosen in the Noise handshake (no extra round trip), false when by multistream-select.</summary>
    public bool MuxerNegotiatedEarly { get; }

    /// <summary>True on the dialling side (the yamux client, odd stream IDs).</summary>
    public bool IsInitiator { get; }

    /// <summary>The Noise handshake hash, equal on both ends (for <see cref="ShortAuthString.From"/>).</summary>
    public byte[] HandshakeHash => Stream.HandshakeHash;

    /// <summary>Closes the connection and wipes its keys.</summary>
    public ValueTask DisposeAsync() => Stream.DisposeAsync();

    /// <inheritdoc/>
    public override string ToString() => $"UpgradedConnection({RemotePeerId}, {Muxer})";
}
