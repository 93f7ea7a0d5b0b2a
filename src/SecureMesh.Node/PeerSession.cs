using System.Net;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Node;

/// <summary>Which side opened a connection.</summary>
public enum ConnectionDirection
{
    /// <summary>The peer dialled us.</summary>
    Inbound,
    /// <summary>We dialled the peer.</summary>
    Outbound,
}

/// <summary>An authenticated, authorized connection to a trusted peer.</summary>
public sealed class PeerSession
{
    private readonly CancellationTokenSource _closing = new();
    private string? _closeReason;

    internal PeerSession(SecureConnection connection, ConnectionDirection direction, DateTimeOffset since, string shortAuthString)
    {
        Connection = connection;
        Direction = direction;
        Since = since;
        ShortAuthString = shortAuthString;
    }

    /// <summary>The authenticated remote identity.</summary>
    public PeerId PeerId => Connection.RemotePeerId;

    /// <summary>The encrypted channel.</summary>
    public SecureConnection Connection { get; }

    /// <summary>Who dialled.</summary>
    public ConnectionDirection Direction { get; }

    /// <summary>When the session was established.</summary>
    public DateTimeOffset Since { get; }

    /// <summary>Words derived from the handshake hash that both sides can read aloud to rule out interception.</summary>
    public string ShortAuthString { get; }

    /// <summary>The remote TCP endpoint.</summary>
    public IPEndPoint? RemoteEndPoint => Connection.RemoteEndPoint;

    /// <summary>Cancelled when the session is closing.</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>Why the session closed, once it has.</summary>
    public string? CloseReason => _closeReason;

    internal Task Completion { get; set; } = Task.CompletedTask;

    /// <summary>True once the peer said it refuses this node (it has blocked us).</summary>
    public bool RefusedByPeer { get; private set; }

    /// <summary>True once the peer answered with its protocol hello: the session works.</summary>
    public bool Established { get; private set; }

    /// <summary>Set by the node: told once when the session is established.</summary>
    internal Action<PeerSession>? OnEstablished { get; set; }

    /// <summary>The peer refused this node: remember it and end the session.</summary>
    internal void MarkRefusedByPeer()
    {
        RefusedByPeer = true;
        RequestClose("refused by the peer");
    }

    /// <summary>The peer's hello arrived.</summary>
    internal void MarkEstablished()
    {
        if (!Established)
        {
            Established = true;
            OnEstablished?.Invoke(this);
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
}
