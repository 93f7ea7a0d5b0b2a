using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
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
    private readonly ConcurrentDictionary<PeerId, HandshakeNote> _handshakes = new();
    private readonly ConcurrentDictionary<PeerId, byte> _sasShown = new();
    private readonly ConcurrentDictionary<IPAddress, LogThrottle> _refusalLog = new();
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
        var session = TryOpenSession(connection, ConnectionDirection.Outbound, out var refuse);
        if (session is null)
        {
            await (refuse ? RefuseAsync(connection) : connection.DisposeAsync().AsTask());
            return _sessions.TryGetValue(expected, out existing)
                ? existing
                : throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{expected} is not trusted");
        }
        return session;
    }

    /// <summary>
    /// Dials <paramref name="expected"/> at a stored or typed address (<c>HOST:PORT</c> or a TCP multiaddr): a name is
    /// resolved now and every address it resolves to is tried in turn until one gives a session. An address whose
    /// <c>/p2p</c> names another peer is refused (InvalidInput) without dialling.
    /// </summary>
    public async Task<PeerSession> ConnectAsync(PeerId expected, string address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var target = DialAddress.Parse(address);
        if (target.PeerId is { } named && !named.Equals(expected))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"address {target.Text} names peer {named}, not {expected}");
        }
        if (_sessions.TryGetValue(expected, out var existing))
        {
            return existing;
        }
        var endPoints = ResolveForTest is { } resolve
            ? await resolve(target, cancellationToken).ConfigureAwait(false)
            : await target.ResolveAsync(cancellationToken).ConfigureAwait(false);
        var failures = new List<string>();
        foreach (var endPoint in endPoints)
        {
            try
            {
                return await ConnectAsync(expected, endPoint, cancellationToken).ConfigureAwait(false);
            }
            catch (SecureMeshException e) when (e.Kind is SecureMeshErrorKind.Network or SecureMeshErrorKind.Protocol)
            {
                failures.Add($"{endPoint}: {e.Message}");
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
                failures.Add($"{endPoint}: {e.Message}");
            }
        }
        throw new SecureMeshException(SecureMeshErrorKind.Network,
            endPoints.Count == 1 ? $"cannot reach {target.Text}: {failures[0]}" : $"cannot reach {target.Text} at any of its {endPoints.Count} addresses: {string.Join("; ", failures)}");
    }

    /// <summary>Test seam: stands in for DNS, so a test can hand out several addresses for one name.</summary>
    internal Func<DialAddress, CancellationToken, Task<IReadOnlyList<IPEndPoint>>>? ResolveForTest { get; set; }

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
                if (decision == AuthorizationDecision.BlockedPeer)
                {
                    _ = CutWithRefusalAsync(session, reason);
                }
                else
                {
                    session.RequestClose(reason);
                }
            }
        }
    }

    /// <summary>A session cut because the peer was blocked tells the peer "refused" first, as a new connection would be told.</summary>
    private static async Task CutWithRefusalAsync(PeerSession session, string reason)
    {
        try
        {
            using var timeout = new CancellationTokenSource(RefusalLinger);
            await session.Connection.SendAsync(WireCodec.Encode(new RefusedMessage()), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            session.RequestClose(reason);
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
                if (TryOpenSession(connection, ConnectionDirection.Inbound, out var refuse) is null)
                {
                    if (refuse)
                    {
                        // Off the accept loop: the refusal lingers until the peer hangs up.
                        _ = RefuseAsync(connection);
                    }
                    else
                    {
                        await connection.DisposeAsync();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Tells a blocked peer "refused" (one empty <see cref="RefusedMessage"/>, encrypted, nothing more) and closes,
    /// after waiting briefly for the peer to hang up first so that the close cannot overtake the refusal.
    /// </summary>
    private async Task RefuseAsync(SecureConnection connection)
    {
        try
        {
            using var linger = new CancellationTokenSource(RefusalLinger);
            await connection.SendAsync(WireCodec.Encode(new RefusedMessage()), linger.Token).ConfigureAwait(false);
            // A peer that reads the refusal hangs up; what it sent meanwhile (its hello) is read and dropped, a few
            // messages at most.
            for (var i = 0; i < 4; i++)
            {
                using var dropped = await connection.ReceivePooledAsync(linger.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>How long a refusal waits for the blocked peer to hang up.</summary>
    private static readonly TimeSpan RefusalLinger = TimeSpan.FromSeconds(2);

    /// <summary>How often repeated refusals of one address are logged.</summary>
    internal static readonly TimeSpan RefusalLogInterval = TimeSpan.FromMinutes(1);

    /// <summary>Logs a refusal at most once per <see cref="RefusalLogInterval"/> per address, with the count of those not logged.</summary>
    private void LogRefusal(IPAddress address, string peer, string? remote, string reason, TimeSpan penalty)
    {
        if (_refusalLog.Count >= 4096)
        {
            _refusalLog.Clear();
        }
        var throttle = _refusalLog.GetOrAdd(address, _ => new LogThrottle(_options.Time, burst: 1, RefusalLogInterval));
        if (throttle.TryWrite(out var suppressed))
        {
            if (suppressed > 0)
            {
                NodeLog.RefusedRepeatedly(_logger, remote ?? address.ToString(), suppressed, RefusalLogInterval);
            }
            NodeLog.Refused(_logger, peer, remote, reason, penalty);
        }
    }

    /// <summary>The last authenticated handshake with each trusted peer, live or not: its SAS stays readable after a hang-up.</summary>
    public IReadOnlyCollection<HandshakeNote> RecentHandshakes => [.. _handshakes.Values];

    /// <summary>Authorizes an authenticated connection; returns the session, or null when the caller must close it (and <paramref name="refuse"/> says whether to tell the peer "refused" first).</summary>
    private PeerSession? TryOpenSession(SecureConnection connection, ConnectionDirection direction, out bool refuse)
    {
        refuse = false;
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
                    LogRefusal(address, peer.Text, remote?.ToString(), "stranger budget of this address spent", wait);
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
                if (_handshakes.Count < MaxHandshakeNotes / 2 || _handshakes.ContainsKey(peer))
                {
                    // Strangers get at most half the notes, so minted identities cannot crowd out trusted peers'.
                    _handshakes[peer] = new HandshakeNote(peer, sas, _options.Time.GetUtcNow(), direction, remote?.ToString(), "pending here: not trusted yet");
                }
                return null;
            default:
                // The refusal is this key's: its handshake cost its address a token, but no lockout of the address is
                // kept, so another (trusted) key dialling from the same address is still judged by its own key.
                var penalty = _limiter.HandshakeRetryAfter(address);
                var reason = Describe(decision);
                Audit("handshake.refused", peer, $"{reason}; remote {remote}");
                LogRefusal(address, peer.Text, remote?.ToString(), reason, penalty);
                // A blocked peer is told so (and nothing more), so it stops redialling; a blocked range got no handshake at all.
                refuse = decision == AuthorizationDecision.BlockedPeer;
                return null;
        }

        if (_sessions.Count >= _options.MaxSessions)
        {
            NodeLog.Refused(_logger, peer.Text, remote?.ToString(), "too many sessions", TimeSpan.Zero);
            return null;
        }
        var session = new PeerSession(connection, direction, _options.Time.GetUtcNow(), sas) { OnEstablished = SessionEstablished };
        if (!_sessions.TryAdd(peer, session))
        {
            // One connection per peer: keep the one already working.
            return null;
        }
        var firstEver = false;
        try
        {
            firstEver = _db.Trust.GetPeer(peer)?.LastSeen is null;
            _db.Trust.TouchSeen(peer, direction == ConnectionDirection.Outbound && remote is not null ? PeerAddressFormat.FromEndPoint(remote) : null);
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
        }
        if (_handshakes.Count < MaxHandshakeNotes || _handshakes.ContainsKey(peer))
        {
            _handshakes[peer] = new HandshakeNote(peer, sas, session.Since, direction, remote?.ToString(), null);
        }
        NodeLog.SessionOpened(_logger, peer.Text, direction.ToString().ToLowerInvariant(), remote?.ToString(), session.ShortAuthString);
        if (firstEver && _sasShown.TryAdd(peer, 0))
        {
            // The first session ever with this peer: both people should compare the words now.
            NodeLog.CompareSas(_logger, peer.Text, sas);
        }
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
                    if (message.Memory.Length > 0 && message.Memory.Span[0] == (byte)WireMessageType.Refused)
                    {
                        session.MarkRefusedByPeer();
                    }
                    else
                    {
                        session.MarkEstablished();
                    }
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
            AfterSession(session);
            _sessions.TryRemove(new KeyValuePair<PeerId, PeerSession>(session.PeerId, session));
            await session.Connection.DisposeAsync();
            NodeLog.SessionClosed(_logger, session.PeerId.Text, session.CloseReason ?? "closed");
            SessionClosed?.Invoke(session);
        }
    }

    /// <summary>Most peers whose last handshake is remembered (only trusted peers get one, so this is a safety cap).</summary>
    private const int MaxHandshakeNotes = 4096;

    /// <summary>A session worked: a refusal recorded earlier no longer holds.</summary>
    private void SessionEstablished(PeerSession session)
    {
        try
        {
            if (_db.Trust.ClearRefusal(session.PeerId))
            {
                NodeLog.RefusalCleared(_logger, session.PeerId.Text);
            }
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
        }
    }

    /// <summary>Records how a session ended: a refusal by the peer, or a hang-up before any word (it may not trust us yet).</summary>
    private void AfterSession(PeerSession session)
    {
        var peer = session.PeerId;
        var reason = session.RefusedByPeer ? "refused by the peer" : session.CloseReason ?? "closed";
        if (_handshakes.TryGetValue(peer, out var note) && note.At == session.Since && string.Equals(note.Sas, session.ShortAuthString, StringComparison.Ordinal))
        {
            _handshakes[peer] = note with { Ended = reason };
        }
        if (session.RefusedByPeer)
        {
            try
            {
                var count = _db.Trust.RecordRefusal(peer);
                NodeLog.RefusedByPeer(_logger, peer.Text, count, Transfer.PeerConnector.RefusalBackoff(count));
            }
            catch (SecureMeshException e)
            {
                NodeLog.StoreFailed(_logger, e.Message);
            }
        }
        else if (!session.Established && session.Connection.MessagesReceived == 0 && session.Direction == ConnectionDirection.Outbound
            && !_stopping.IsCancellationRequested && _sasShown.TryAdd(peer, 0))
        {
            // The peer hung up before saying anything: most likely this node is pending there. Show the words once so
            // the two people can compare them before the other side trusts this one.
            NodeLog.HungUpBeforeHello(_logger, peer.Text, session.ShortAuthString);
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

/// <summary>
/// The last authenticated handshake with a trusted peer: its short authentication string (the same words on both
/// sides), when, which side dialled, and how the session ended (null while it is open).
/// </summary>
public sealed record HandshakeNote(PeerId PeerId, string Sas, DateTimeOffset At, ConnectionDirection Direction, string? Remote, string? Ended);
