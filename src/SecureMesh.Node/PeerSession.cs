using System.Net;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Node.Network;

namespace SecureMesh.Node;

/// <summary>Which side opened a connection.</summary>
public enum ConnectionDirection
{
    /// <summary>The peer dialled us.</summary>
    Inbound,
    /// <summary>We dialled the peer.</summary>
    Outbound,
}

/// <summary>
/// An authenticated, authorized libp2p connection to a trusted peer: TCP upgraded with multistream-select and Noise,
/// multiplexed by yamux. Every stream on it negotiates its protocol with multistream-select.
/// </summary>
public sealed class PeerSession
{
    private readonly CancellationTokenSource _closing = new();
    private readonly Dictionary<string, int> _inbound = new(StringComparer.Ordinal);
    private readonly MultistreamOptions _negotiation;
    private string? _closeReason;
    private int _sessionStreamTaken;

    internal PeerSession(UpgradedConnection connection, YamuxSession muxer, ConnectionDirection direction, IPEndPoint? remote,
        DateTimeOffset since, string shortAuthString, MultistreamOptions negotiation)
    {
        Connection = connection;
        Muxer = muxer;
        Direction = direction;
        RemoteEndPoint = remote;
        Since = since;
        ShortAuthString = shortAuthString;
        _negotiation = negotiation;
    }

    /// <summary>The authenticated remote identity.</summary>
    public PeerId PeerId => Connection.RemotePeerId;

    /// <summary>Who dialled.</summary>
    public ConnectionDirection Direction { get; }

    /// <summary>When the session was established.</summary>
    public DateTimeOffset Since { get; }

    /// <summary>Words derived from the handshake hash that both sides can read aloud to rule out interception.</summary>
    public string ShortAuthString { get; }

    /// <summary>The remote TCP endpoint.</summary>
    public IPEndPoint? RemoteEndPoint { get; }

    /// <summary>How the connection reaches the peer: direct, through a relay, or hole-punched.</summary>
    public ConnectionPath Path { get; internal init; }

    /// <summary>The relay a relayed connection runs through; null otherwise.</summary>
    public PeerId? RelayPeerId { get; internal init; }

    /// <summary>Bytes written to the network, handshake included.</summary>
    public long BytesSent => Connection.Stream.BytesSent;

    /// <summary>Bytes read from the network, handshake included.</summary>
    public long BytesReceived => Connection.Stream.BytesReceived;

    /// <summary>The session stream (<see cref="NodeOptions.SessionProtocol"/>) once it is open; the session handler's messages travel on it.</summary>
    public MessageStream? Messages { get; internal set; }

    /// <summary>What the peer told about itself with identify, once it has.</summary>
    public IdentifyMessage? Identified { get; internal set; }

    /// <summary>Cancelled when the session is closing.</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>Why the session closed, once it has.</summary>
    public string? CloseReason => _closeReason;

    /// <summary>The secured connection underneath.</summary>
    internal UpgradedConnection Connection { get; }

    /// <summary>The stream multiplexer.</summary>
    internal YamuxSession Muxer { get; }

    internal Task Completion { get; set; } = Task.CompletedTask;

    /// <summary>True once the peer said it refuses this node (it has blocked us).</summary>
    public bool RefusedByPeer { get; private set; }

    /// <summary>True once the peer answered (its protocol hello, or identify): the session works.</summary>
    public bool Established { get; private set; }

    /// <summary>Set by the node: told once when the session is established.</summary>
    internal Action<PeerSession>? OnEstablished { get; set; }

    /// <summary>The peer refused this node: remember it and end the session.</summary>
    internal void MarkRefusedByPeer()
    {
        RefusedByPeer = true;
        RequestClose("refused by the peer");
    }

    /// <summary>The peer answered.</summary>
    internal void MarkEstablished()
    {
        if (!Established)
        {
            Established = true;
            OnEstablished?.Invoke(this);
        }
    }

    /// <summary>
    /// Opens a stream to the peer and negotiates <paramref name="protocol"/> on it. Throws <see cref="SecureMeshException"/>
    /// (NotFound when the peer does not serve it to us).
    /// </summary>
    public async Task<Stream> OpenStreamAsync(string protocol, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(protocol);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
        YamuxStream stream;
        try
        {
            stream = await Muxer.OpenStreamAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"session with {PeerId} closed");
        }
        try
        {
            await MultistreamSelect.SelectAsync(stream, [protocol], _negotiation, linked.Token).ConfigureAwait(false);
            return stream;
        }
        catch (Exception e)
        {
            stream.Reset();
            await stream.DisposeAsync().ConfigureAwait(false);
            if (e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network, $"session with {PeerId} closed", e);
            }
            throw;
        }
    }

    /// <summary>Claims the one session stream of this connection; false when it was already taken.</summary>
    internal bool TryTakeSessionStream() => Interlocked.Exchange(ref _sessionStreamTaken, 1) == 0;

    /// <summary>Counts an inbound stream of <paramref name="protocol"/>; false when <paramref name="max"/> are already open.</summary>
    internal bool TryEnterInbound(string protocol, int max)
    {
        lock (_inbound)
        {
            _inbound.TryGetValue(protocol, out var open);
            if (open >= max)
            {
                return false;
            }
            _inbound[protocol] = open + 1;
            return true;
        }
    }

    internal void ExitInbound(string protocol)
    {
        lock (_inbound)
        {
            if (_inbound.TryGetValue(protocol, out var open))
            {
                if (open <= 1)
                {
                    _inbound.Remove(protocol);
                }
                else
                {
                    _inbound[protocol] = open - 1;
                }
            }
        }
    }

    internal void RequestClose(string reason)
    {
        Interlocked.CompareExchange(ref _closeReason, reason, null);
        try
        {
            _closing.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"PeerSession({PeerId}, {Direction}, {(Path == ConnectionPath.Relayed ? "via " + RelayPeerId : RemoteEndPoint)})";
}
