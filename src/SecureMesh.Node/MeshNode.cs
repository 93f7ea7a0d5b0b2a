using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node;

/// <summary>
/// A running node: listens, authenticates every connection with the Noise handshake, and lets only trusted peers
/// keep a session (default deny). Unknown peers are recorded as pending and disconnected; blocked peers and
/// addresses are cut at once and rate-limited. Trust changes made by another process apply within a second.
/// </summary>
public sealed class MeshNode : IAsyncDisposable
{
    private readonly NodeIdentity _identity;
    private readonly SecureMeshDatabase _db;
    private readonly NodeOptions _options;
    private readonly ILogger _logger;
    private readonly SecureListener _listener;
    private readonly AttemptLimiter _limiter;
    private readonly ConcurrentDictionary<PeerId, PeerSession> _sessions = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private readonly Task _pollLoop;
    private int _disposed;

    private MeshNode(NodeIdentity identity, SecureMeshDatabase db, NodeOptions options, SecureListener listener, AttemptLimiter limiter)
    {
        _identity = identity;
        _db = db;
        _options = options;
        _logger = options.LoggerFactory.CreateLogger("SecureMesh.Node");
        _listener = listener;
        _limiter = limiter;
        _acceptLoop = Task.Run(AcceptLoopAsync);
        _pollLoop = Task.Run(PollLoopAsync);
        NodeLog.Started(_logger, identity.PeerId.Text, listener.LocalEndPoint.ToString());
    }

    /// <summary>This node's identity.</summary>
    public PeerId PeerId => _identity.PeerId;

    /// <summary>The bound listen address.</summary>
    public IPEndPoint LocalEndPoint => _listener.LocalEndPoint;

    /// <summary>The open sessions with trusted peers.</summary>
    public IReadOnlyCollection<PeerSession> Sessions => [.. _sessions.Values];

    /// <summary>Connections closed before the handshake, and handshakes that failed (for tests and status).</summary>
    internal (long Refused, long Failed, long Succeeded) HandshakeCounts =>
        (_listener.RefusedConnections, _listener.FailedHandshakes, _listener.SucceededHandshakes);

    /// <summary>The database the node enforces.</summary>
    public SecureMeshDatabase Database => _db;

    /// <summary>Raised (on a pool thread) when a session with a trusted peer opens.</summary>
    public event Action<PeerSession>? SessionOpened;

    /// <summary>Raised (on a pool thread) when a session closes.</summary>
    public event Action<PeerSession>? SessionClosed;

    /// <summary>Starts listening; a port that cannot be bound is a clear <see cref="SecureMeshException"/>.</summary>
    public static MeshNode Start(NodeIdentity identity, SecureMeshDatabase db, NodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(options);
        var limiter = new AttemptLimiter(options.Time, options.HandshakeBurst, options.HandshakeRefill);
        var logger = options.LoggerFactory.CreateLogger("SecureMesh.Channel");
        MeshNode? node = null;
        var listenerOptions = new SecureListenerOptions
        {
            HandshakeTimeout = options.HandshakeTimeout,
            MaxMessageSize = options.MaxMessageSize,
            MaxPendingHandshakes = options.MaxPendingHandshakes,
            MaxPendingPerAddress = options.MaxPendingPerAddress,
            TimeProvider = options.Time,
            Logger = logger,
            // Checked before a single byte is read: blocked ranges, and addresses whose handshake budget is spent, get only a close.
            AddressFilter = address => node?.AdmitAddress(address) ?? true,
        };
        var listener = SecureListener.Start(options.Listen, identity, listenerOptions);
        node = new MeshNode(identity, db, options, listener, limiter);
        return node;
    }

    /// <summary>Dials a peer at <paramref name="endPoint"/>, insisting on <paramref name="expected"/>; only a trusted peer gets a session.</summary>
    public async Task<PeerSession> ConnectAsync(PeerId expected, IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(expected);
        if (_sessions.TryGetValue(expected, out var existing))
        {
            return existing;
        }
        var decision = _db.Trust.Authorize(expected, endPoint.Address);
        if (decision != AuthorizationDecision.Trusted)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{expected} is not trusted ({Describe(decision)}); trust it first");
        }
        var connection = await SecureChannel.DialAsync(_identity, endPoint, expected, ChannelOptions(), cancellationToken);
        var session = TryOpenSession(connection, ConnectionDirection.Outbound);
        if (session is null)
        {
            await connection.DisposeAsync();
            return _sessions.TryGetValue(expected, out existing)
                ? existing
                : throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{expected} is not trusted");
        }
        return session;
    }

    /// <summary>The session with <paramref name="peer"/>, if one is open.</summary>
    public PeerSession? GetSession(PeerId peer) => _sessions.GetValueOrDefault(peer);

    /// <summary>Re-checks every open session against the trust store now (also done on every change).</summary>
    public void ReevaluateSessions()
    {
        foreach (var session in _sessions.Values)
        {
            var address = session.RemoteEndPoint?.Address ?? IPAddress.None;
            AuthorizationDecision decision;
            try
            {
                decision = _db.Trust.Authorize(session.PeerId, address);
            }
            catch (SecureMeshException e)
            {
                NodeLog.StoreFailed(_logger, e.Message);
                continue;
            }
            if (decision != AuthorizationDecision.Trusted)
            {
                var reason = $"no longer allowed: {Describe(decision)}";
                Audit("session.cut", session.PeerId, $"{reason}; remote {session.RemoteEndPoint}");
                session.RequestClose(reason);
            }
        }
    }

    private SecureChannelOptions ChannelOptions() => new()
    {
        HandshakeTimeout = _options.HandshakeTimeout,
        MaxMessageSize = _options.MaxMessageSize,
        TimeProvider = _options.Time,
        Logger = _options.LoggerFactory.CreateLogger("SecureMesh.Channel"),
    };

    private bool AdmitAddress(IPAddress address)
    {
        bool blocked;
        try
        {
            blocked = _db.Trust.IsAddressBlocked(address);
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
            return false;
        }
        if (blocked)
        {
            Audit("handshake.refused", null, $"address {address} is in a blocked range");
            NodeLog.RefusedAddress(_logger, address.ToString(), "blocked range");
            return false;
        }
        // Every inbound handshake takes a token from its address's budget; a trusted key gives it back (TryOpenSession).
        if (!_limiter.TryTakeHandshake(address, out var retry))
        {
            NodeLog.RefusedAddress(_logger, address.ToString(), $"too many handshakes without a session from this address; next in {retry.TotalSeconds:0.#}s");
            return false;
        }
        return true;
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            await foreach (var connection in _listener.Connections.ReadAllAsync(_stopping.Token))
            {
                if (TryOpenSession(connection, ConnectionDirection.Inbound) is null)
                {
                    await connection.DisposeAsync();
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>Authorizes an authenticated connection; returns the session, or null when the caller must close it.</summary>
    private PeerSession? TryOpenSession(SecureConnection connection, ConnectionDirection direction)
    {
        var peer = connection.RemotePeerId;
        var remote = connection.RemoteEndPoint;
        var address = remote?.Address ?? IPAddress.None;
        var sas = Core.Channel.ShortAuthString.From(connection.HandshakeHash);
        AuthorizationDecision decision;
        try
        {
            decision = _db.Trust.Authorize(peer, address);
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
            return null;
        }
        switch (decision)
        {
            case AuthorizationDecision.Trusted:
                // Judged by its key: a trusted peer's handshake costs its address nothing, whatever others did from there.
                if (direction == ConnectionDirection.Inbound)
                {
                    _limiter.RefundHandshake(address);
                }
                break;
            case AuthorizationDecision.Unknown:
            case AuthorizationDecision.Pending:
                // Strangers may retry, but not fast enough to flood the trust store: the budget is checked before
                // anything is stored, and a stranger over it is not recorded (its handshake already cost its address a
                // token of the handshake budget, as every stranger's does).
                if (!_limiter.TryTakeStrangerAttempt(address))
                {
                    var wait = _limiter.HandshakeRetryAfter(address);
                    Audit("handshake.refused", peer, $"stranger budget of this address spent: not recorded; remote {remote}");
                    NodeLog.Refused(_logger, peer.Text, remote?.ToString(), "stranger budget of this address spent", wait);
                    return null;
                }
                try
                {
                    if (remote is not null)
                    {
                        _db.Trust.RecordPending(peer, remote);
                    }
                    Audit("handshake.pending", peer, $"not trusted: disconnected; remote {remote}; SAS {sas}");
                }
                catch (SecureMeshException e)
                {
                    NodeLog.StoreFailed(_logger, e.Message);
                }
                NodeLog.PendingPeer(_logger, peer.Text, remote?.ToString(), sas);
                return null;
            default:
                // The refusal is this key's: its handshake cost its address a token, but no lockout of the address is
                // kept, so another (trusted) key dialling from the same address is still judged by its own key.
                var penalty = _limiter.HandshakeRetryAfter(address);
                var reason = Describe(decision);
                Audit("handshake.refused", peer, $"{reason}; remote {remote}");
                NodeLog.Refused(_logger, peer.Text, remote?.ToString(), reason, penalty);
                return null;
        }

        if (_sessions.Count >= _options.MaxSessions)
        {
            NodeLog.Refused(_logger, peer.Text, remote?.ToString(), "too many sessions", TimeSpan.Zero);
            return null;
        }
        var session = new PeerSession(connection, direction, _options.Time.GetUtcNow(), sas);
        if (!_sessions.TryAdd(peer, session))
        {
            // One connection per peer: keep the one already working.
            return null;
        }
        try
        {
            _db.Trust.TouchSeen(peer, direction == ConnectionDirection.Outbound && remote is not null ? PeerAddressFormat.FromEndPoint(remote) : null);
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
        }
        NodeLog.SessionOpened(_logger, peer.Text, direction.ToString().ToLowerInvariant(), remote?.ToString(), session.ShortAuthString);
        session.Completion = Task.Run(() => RunSessionAsync(session));
        SessionOpened?.Invoke(session);
        return session;
    }

    private async Task RunSessionAsync(PeerSession session)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(session.Closing, _stopping.Token);
        try
        {
            if (_options.SessionHandler is { } handler)
            {
                await handler(session, linked.Token);
            }
            else
            {
                while (!linked.IsCancellationRequested)
                {
                    using var message = await session.Connection.ReceivePooledAsync(linked.Token);
                }
            }
            session.RequestClose("handler finished");
        }
        catch (OperationCanceledException)
        {
            session.RequestClose(_stopping.IsCancellationRequested ? "node stopping" : "closed");
        }
        catch (SecureMeshException e)
        {
            session.RequestClose(e.Message);
        }
        catch (IOException e)
        {
            session.RequestClose(e.Message);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            NodeLog.HandlerFailed(_logger, session.PeerId.Text, e.Message);
            session.RequestClose(e.Message);
        }
        finally
        {
            _sessions.TryRemove(new KeyValuePair<PeerId, PeerSession>(session.PeerId, session));
            await session.Connection.DisposeAsync();
            NodeLog.SessionClosed(_logger, session.PeerId.Text, session.CloseReason ?? "closed");
            SessionClosed?.Invoke(session);
        }
    }

    private async Task PollLoopAsync()
    {
        long stamp;
        try
        {
            stamp = _db.ChangeStamp();
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
            stamp = 0;
        }
        using var timer = new PeriodicTimer(_options.PollInterval, _options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                long now;
                try
                {
                    now = _db.ChangeStamp();
                }
                catch (SecureMeshException e)
                {
                    NodeLog.StoreFailed(_logger, e.Message);
                    continue;
                }
                if (now != stamp)
                {
                    stamp = now;
                    ReevaluateSessions();
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private void Audit(string eventName, PeerId? peer, string detail)
    {
        try
        {
            if (peer is null)
            {
                _db.Audit.Append(eventName, detail);
            }
            else
            {
                _db.Audit.Append(eventName, peer, detail);
            }
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
        }
    }

    private static string Describe(AuthorizationDecision decision) => decision switch
    {
        AuthorizationDecision.BlockedPeer => "peer is blocked",
        AuthorizationDecision.BlockedAddress => "address is in a blocked range",
        AuthorizationDecision.Pending => "peer is pending",
        AuthorizationDecision.Unknown => "peer is unknown",
        _ => "trusted",
    };

    /// <summary>Stops listening, closes every session and waits for them to finish.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stopping.CancelAsync();
        await _listener.DisposeAsync();
        foreach (var session in _sessions.Values)
        {
            session.RequestClose("node stopping");
        }
        try
        {
            await Task.WhenAll([_acceptLoop, _pollLoop, .. _sessions.Values.Select(s => s.Completion)]).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }
        NodeLog.Stopped(_logger);
        _stopping.Dispose();
    }
}
