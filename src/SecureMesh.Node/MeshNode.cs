using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Ping;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node;

/// <summary>
/// The connection side of a node: the TCP transport and the upgrader (multistream-select, Noise, yamux), the connection
/// manager (one connection per peer, the simultaneous-dial tie-break, a cap on connections), authorization (default
/// deny: only trusted peers keep a connection; unknown peers are recorded as pending and disconnected; blocked peers and
/// addresses are cut at once and rate-limited; trust changes made by another process apply within a second) and the
/// protocol router with identify and ping. The services (transfer, discovery, control) plug in through
/// <see cref="NodeOptions"/>; <see cref="MeshHost"/> assembles them.
/// </summary>
public sealed partial class MeshNode : IAsyncDisposable
{
    private readonly NodeIdentity _identity;
    private readonly SecureMeshDatabase _db;
    private readonly NodeOptions _options;
    private readonly ILogger _logger;
    private readonly TcpTransport _listener;
    private readonly Upgrader _upgrader;
    private readonly AttemptLimiter _limiter;
    private readonly ProtocolRouter _router;
    private readonly IdentifyService _identify;
    private readonly PingService _ping;
    private readonly Relay.RelayClient _relayClient;
    private readonly Relay.RelayService _relayService;
    private readonly HolePunch.HolePunchService _holePunch;
    private readonly MultistreamOptions _negotiation;
    private readonly Lock _sessionsGate = new();
    private readonly ConcurrentDictionary<PeerId, PeerSession> _sessions = new();
    private readonly ConcurrentDictionary<PeerId, HandshakeNote> _handshakes = new();
    private readonly ConcurrentDictionary<PeerId, byte> _sasShown = new();
    private readonly SeenPeers _seen;
    private readonly ConcurrentDictionary<IPAddress, LogThrottle> _refusalLog = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private readonly Task _pollLoop;
    private int _disposed;

    private MeshNode(NodeIdentity identity, SecureMeshDatabase db, NodeOptions options, TcpTransport listener, Upgrader upgrader, AttemptLimiter limiter)
    {
        _identity = identity;
        _db = db;
        _options = options;
        _logger = options.LoggerFactory.CreateLogger("SecureMesh.Node");
        _listener = listener;
        _upgrader = upgrader;
        _limiter = limiter;
        _seen = new SeenPeers(db);
        _identify = new IdentifyService(options.StreamTimeout, options.Time);
        _ping = new PingService(new PingServiceOptions { TimeProvider = options.Time });
        _negotiation = new MultistreamOptions { Timeout = options.StreamTimeout, TimeProvider = options.Time };
        var relayLogger = options.LoggerFactory.CreateLogger("SecureMesh.Relay");
        _relayClient = new Relay.RelayClient(this, db, options.Relay, options.StreamTimeout, options.Time, relayLogger);
        _relayService = new Relay.RelayService(this, db, options.Relay, options.StreamTimeout, options.Time, relayLogger, () => _relayClient.Settings);
        _holePunch = new HolePunch.HolePunchService(this, upgrader, options.StreamTimeout, options.Time, relayLogger);
        _router = new ProtocolRouter(BuiltInProtocols().Concat(options.Protocols), new Relay.RelayPolicy(options.Policy, () => _relayClient.Settings),
            options.StreamTimeout, options.Time, options.LoggerFactory.CreateLogger("SecureMesh.Network"));
        _acceptLoop = Task.Run(AcceptLoopAsync);
        _pollLoop = Task.Run(PollLoopAsync);
        _relayClient.Start();
        NodeLog.Started(_logger, identity.PeerId.Text, listener.LocalEndPoint.ToString());
    }

    /// <summary>This node's identity.</summary>
    public PeerId PeerId => _identity.PeerId;

    /// <summary>The bound listen address.</summary>
    public IPEndPoint LocalEndPoint => _listener.LocalEndPoint;

    /// <summary>What the node knows of its own reach: external addresses (mapped, observed), their reachability, the port mapping.</summary>
    public NodeReach Reach { get; } = new();

    /// <summary>The protocols served on streams (what identify announces to a trusted peer).</summary>
    public IReadOnlyList<string> Protocols => _router.Protocols;

    /// <summary>Upgrades refused, failed and finished by the listener (for status and tests).</summary>
    internal (long Refused, long Failed, long Succeeded) ListenerCounts => (_listener.RefusedConnections, _listener.FailedHandshakes, _listener.SucceededHandshakes);

    /// <summary>The open sessions with trusted peers.</summary>
    public IReadOnlyCollection<PeerSession> Sessions => [.. _sessions.Values];

    /// <summary>Connections closed before the handshake, and handshakes that failed (for tests and status).</summary>
    internal (long Refused, long Failed, long Succeeded) HandshakeCounts =>
        (_listener.RefusedConnections, _listener.FailedHandshakes, _listener.SucceededHandshakes);

    /// <summary>The database the node enforces.</summary>
    public SecureMeshDatabase Database => _db;

    /// <summary>Raised (on a pool thread) when a session with a trusted peer opens.</summary>
    public event Action<PeerSession>? SessionOpened;

    /// <summary>Raised (on a pool thread) when a peer told who it is (identify, or an identify push).</summary>
    public event Action<PeerSession>? PeerIdentified;

    /// <summary>Raised (on a pool thread) when a session closes.</summary>
    public event Action<PeerSession>? SessionClosed;

    /// <summary>Starts listening; a port that cannot be bound is a clear <see cref="SecureMeshException"/>.</summary>
    public static MeshNode Start(NodeIdentity identity, SecureMeshDatabase db, NodeOptions options)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(options);
        var limiter = new AttemptLimiter(options.Time, options.HandshakeBurst, options.HandshakeRefill);
        var failureLog = new LogThrottle(options.Time);
        var upgrader = new Upgrader(identity, new UpgraderOptions
        {
            HandshakeTimeout = options.HandshakeTimeout,
            TimeProvider = options.Time,
            Logger = options.LoggerFactory.CreateLogger("SecureMesh.Channel"),
            FailureLog = failureLog,
        });
        MeshNode? node = null;
        var listener = TcpTransport.Listen(options.Listen, upgrader, new TcpTransportOptions
        {
            HandshakeTimeout = options.HandshakeTimeout,
            MaxPendingHandshakes = options.MaxPendingHandshakes,
            MaxPendingPerAddress = options.MaxPendingPerAddress,
            Time = options.Time,
            Logger = options.LoggerFactory.CreateLogger("SecureMesh.Network"),
            FailureLog = failureLog,
            // Checked before a single byte is read: blocked ranges, and addresses whose handshake budget is spent, get only a close.
            AddressFilter = address => node?.AdmitAddress(address) ?? true,
        });
        node = new MeshNode(identity, db, options, listener, upgrader, limiter);
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
        var connection = await TcpTransport.DialAsync(_upgrader, endPoint, expected, _options.HandshakeTimeout, _options.Time, cancellationToken).ConfigureAwait(false);
        var session = TryOpenSession(connection, ConnectionDirection.Outbound, endPoint, out var refuse);
        if (session is null)
        {
            await (refuse ? RefuseAsync(connection) : connection.DisposeAsync().AsTask()).ConfigureAwait(false);
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
        if (Relay.CircuitAddress.TryParse(address, out var circuit))
        {
            return await ConnectThroughRelayAsync(expected, circuit, cancellationToken).ConfigureAwait(false);
        }
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

    /// <summary>
    /// Dials and upgrades a connection that is no session (an AutoNAT dial-back): the caller owns it and its
    /// multiplexer (<see cref="OpenMuxer"/>). Only <paramref name="expected"/>'s key completes the handshake.
    /// </summary>
    internal Task<UpgradedConnection> DialSideConnectionAsync(PeerId expected, IPEndPoint endPoint, CancellationToken cancellationToken) =>
        TcpTransport.DialAsync(_upgrader, endPoint, expected, _options.HandshakeTimeout, _options.Time, cancellationToken);

    /// <summary>A multiplexer for a side connection, with the node's limits.</summary>
    internal YamuxSession OpenMuxer(UpgradedConnection connection) =>
        new(connection.Stream, connection.IsInitiator, _options.Yamux, _options.Time);

    /// <summary>How streams negotiate their protocol on this node (timeouts).</summary>
    internal MultistreamOptions Negotiation => _negotiation;

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

    /// <summary>The protocol on which a node that blocked its peer says so: one stream, one empty <see cref="RefusedMessage"/>.</summary>
    public const string RefusedProtocol = "/securemesh/refused/1.0.0";

    /// <summary>A session cut because the peer was blocked tells the peer "refused" first, as a new connection would be told.</summary>
    private async Task CutWithRefusalAsync(PeerSession session, string reason)
    {
        try
        {
            // Briefly: the cut itself must not wait on the peer.
            using var timeout = new CancellationTokenSource(RefusalLinger / 4, _options.Time);
            var stream = await session.Muxer.OpenStreamAsync(timeout.Token).ConfigureAwait(false);
            await SayRefusedAsync(stream, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            session.RequestClose(reason);
        }
    }

    /// <summary>
    /// Sends the refusal on a new stream in one write, without waiting for the peer's answer (a proposal of a single
    /// protocol may be followed by its data at once): the multistream-select header, the <see cref="RefusedProtocol"/>
    /// proposal, one empty <see cref="RefusedMessage"/>, and the end of the stream. Then waits (until
    /// <paramref name="cancellationToken"/>) for the peer to end the stream, so the close cannot overtake the refusal;
    /// whatever the peer sends meanwhile is dropped unread.
    /// </summary>
    private static async Task SayRefusedAsync(YamuxStream stream, CancellationToken cancellationToken)
    {
        try
        {
            var message = WireCodec.Encode(new RefusedMessage());
            var bytes = new List<byte>();
            foreach (var line in new[] { MultistreamSelect.ProtocolId, RefusedProtocol })
            {
                var text = System.Text.Encoding.UTF8.GetBytes(line + "\n");
                var prefix = new byte[Varint.MaxLength64];
                bytes.AddRange(prefix.AsSpan(0, Varint.Write(prefix, (ulong)text.Length)).ToArray());
                bytes.AddRange(text);
            }
            bytes.Add((byte)message.Length);
            bytes.AddRange(message);
            await stream.WriteAsync(bytes.ToArray(), cancellationToken).ConfigureAwait(false);
            await stream.CloseWriteAsync(cancellationToken).ConfigureAwait(false);
            var drop = new byte[256];
            while (await stream.ReadAsync(drop, cancellationToken).ConfigureAwait(false) > 0)
            {
            }
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Tells a blocked peer "refused" (one stream of <see cref="RefusedProtocol"/> carrying one empty
    /// <see cref="RefusedMessage"/>, nothing more: no stream of the peer's is accepted) and closes, after waiting briefly
    /// for the peer to hang up first so that the close cannot overtake the refusal.
    /// </summary>
    private async Task RefuseAsync(UpgradedConnection connection)
    {
        var muxer = new YamuxSession(connection.Stream, connection.IsInitiator, _options.Yamux, _options.Time);
        try
        {
            using var linger = new CancellationTokenSource(RefusalLinger, _options.Time);
            await SayRefusedAsync(await muxer.OpenStreamAsync(linger.Token).ConfigureAwait(false), linger.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            await muxer.DisposeAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The peer says it refuses us (it has blocked this node): remember it and end the session.</summary>
    private static async Task ReceiveRefusalAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        await using var messages = new MessageStream(stream, 64);
        using var message = await messages.ReceiveAsync(cancellationToken).ConfigureAwait(false);
        if (message is not null && WireCodec.Decode(message.Memory.Span) is RefusedMessage)
        {
            session.MarkRefusedByPeer();
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
            await foreach (var inbound in _listener.Connections.ReadAllAsync(_stopping.Token).ConfigureAwait(false))
            {
                try
                {
                    await AcceptOneAsync(inbound.Connection, inbound.Remote).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !_stopping.IsCancellationRequested)
                {
                    // One connection's failure (a store, a subscriber, a bug) must not end the loop: the node would accept
                    // nothing more until restarted.
                    NodeLog.AcceptFailed(_logger, inbound.Remote?.ToString() ?? "?", e.GetType().Name);
                    await inbound.Connection.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private async Task AcceptOneAsync(UpgradedConnection connection, IPEndPoint? remote)
    {
        if (_options.SideConnections?.TryTake(this, connection, remote) == true)
        {
            // An AutoNAT dial-back this node asked for: served on its own, never a session.
            return;
        }
        if (TryOpenSession(connection, ConnectionDirection.Inbound, remote, out var refuse) is null)
        {
            if (refuse)
            {
                // Off the accept loop: the refusal lingers until the peer hangs up.
                _ = RefuseAsync(connection);
            }
            else
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Authorizes an authenticated connection; returns the session, or null when the caller must close it (and <paramref name="refuse"/> says whether to tell the peer "refused" first).</summary>
    private PeerSession? TryOpenSession(UpgradedConnection connection, ConnectionDirection direction, IPEndPoint? remote, out bool refuse,
        ConnectionPath path = ConnectionPath.Direct, PeerId? relay = null)
    {
        refuse = false;
        var peer = connection.RemotePeerId;
        if (path == ConnectionPath.Direct && direction == ConnectionDirection.Inbound && _holePunch.IsPunching(peer))
        {
            // The peer's hole-punching SYN reached our listener.
            path = ConnectionPath.HolePunched;
        }
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

        PeerSession session;
        PeerSession? replaced = null;
        lock (_sessionsGate)
        {
            _sessions.TryGetValue(peer, out var existing);
            if (existing is not null && !KeepsNewConnection(_identity.PeerId, peer, existing, direction, path))
            {
                // One connection per peer: keep the one already working (or the one the tie-break picks).
                return null;
            }
            if (existing is null && _sessions.Count >= _options.MaxSessions)
            {
                NodeLog.Refused(_logger, peer.Text, remote?.ToString(), "too many sessions", TimeSpan.Zero);
                return null;
            }
            // Authorized: only now is the multiplexer started, so nothing but the handshake was read from the peer before.
            var muxer = new YamuxSession(connection.Stream, connection.IsInitiator, _options.Yamux, _options.Time,
                _options.LoggerFactory.CreateLogger("SecureMesh.Yamux"));
            session = new PeerSession(connection, muxer, direction, remote, _options.Time.GetUtcNow(), sas, _negotiation)
            {
                OnEstablished = SessionEstablished,
                Path = path,
                RelayPeerId = path == ConnectionPath.Relayed ? relay : null,
            };
            replaced = existing;
            _sessions[peer] = session;
        }
        if (replaced is not null && replaced.Path == ConnectionPath.Relayed && path != ConnectionPath.Relayed)
        {
            // A direct connection takes over from a relayed one; streams in flight on the relayed one get a moment to finish.
            NetworkLog.ConnectionReplaced(_logger, peer.Text, $"a {path.ToString().ToLowerInvariant()} connection replaces the relayed one");
            _ = Task.Delay(_options.Relay.ReplacedGrace, _options.Time).ContinueWith(_ => replaced.RequestClose("replaced by a direct connection"), TaskScheduler.Default);
        }
        else if (replaced is not null)
        {
            NetworkLog.ConnectionReplaced(_logger, peer.Text, "both sides dialled at once; the connection dialled by the smaller Peer ID stays");
            replaced.RequestClose("replaced by the connection both sides keep");
        }
        var firstEver = false;
        try
        {
            firstEver = _seen.Note(peer, direction == ConnectionDirection.Outbound && remote is not null ? PeerAddressFormat.FromEndPoint(remote) : null);
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
        }
        if (_handshakes.Count < MaxHandshakeNotes || _handshakes.ContainsKey(peer))
        {
            _handshakes[peer] = new HandshakeNote(peer, sas, session.Since, direction, remote?.ToString(), null);
        }
        NodeLog.SessionOpened(_logger, peer.Text, direction.ToString().ToLowerInvariant(),
            path == ConnectionPath.Relayed ? $"relayed via {relay}" : path == ConnectionPath.HolePunched ? $"{remote}, hole-punched" : remote?.ToString(), session.ShortAuthString);
        if (firstEver && _sasShown.TryAdd(peer, 0))
        {
            // The first session ever with this peer: both people should compare the words now.
            NodeLog.CompareSas(_logger, peer.Text, sas);
        }
        session.Completion = Task.Run(() => RunSessionAsync(session));
        _holePunch.OnSessionOpened(session);
        RaiseSessionOpened(session);
        return session;
    }

    /// <summary>
    /// Tells each <see cref="SessionOpened"/> subscriber in turn. It runs on the accept loop: a subscriber that throws is
    /// logged and skipped, never allowed to end the loop (the node would accept nobody after it).
    /// </summary>
    private void RaiseSessionOpened(PeerSession session)
    {
        if (SessionOpened is not { } handlers)
        {
            return;
        }
        foreach (var handler in handlers.GetInvocationList())
        {
            try
            {
                ((Action<PeerSession>)handler)(session);
            }
            catch (Exception e)
            {
                NodeLog.SubscriberFailed(_logger, session.PeerId.Text, e.GetType().Name);
            }
        }
    }

    /// <summary>
    /// The simultaneous-dial tie-break, the same on both sides: of two connections dialled by different sides, the one
    /// dialled by the peer with the smaller Peer ID stays. Two dialled by the same side: the one already there stays.
    /// </summary>
    internal static bool KeepsNewConnection(PeerId us, PeerId peer, PeerSession existing, ConnectionDirection incoming, ConnectionPath path)
    {
        // A direct (or hole-punched) connection beats a relayed one, whoever dialled.
        if ((existing.Path == ConnectionPath.Relayed) != (path == ConnectionPath.Relayed))
        {
            return path != ConnectionPath.Relayed;
        }
        return KeepsNewConnection(us, peer, existing.Direction, incoming);
    }

    /// <summary>The tie-break between two connections of the same kind (both direct or both relayed).</summary>
    internal static bool KeepsNewConnection(PeerId us, PeerId peer, ConnectionDirection existing, ConnectionDirection incoming)
    {
        if (existing == incoming)
        {
            return false;
        }
        var weAreSmaller = string.CompareOrdinal(us.Text, peer.Text) < 0;
        // The new connection was dialled by us when it is outbound.
        return (incoming == ConnectionDirection.Outbound) == weAreSmaller;
    }

    private IEnumerable<StreamProtocol> BuiltInProtocols()
    {
        yield return new StreamProtocol(IdentifyService.ProtocolId, ServeIdentifyAsync, 4);
        yield return new StreamProtocol(IdentifyService.PushProtocolId, ReceiveIdentifyPushAsync, 4);
        // A stock libp2p node may ping on many streams at once (the interop test opens 100).
        yield return new StreamProtocol(PingService.ProtocolId, (_, stream, ct) => _ping.ServeAsync(stream, ct), 128);
        yield return new StreamProtocol(RefusedProtocol, ReceiveRefusalAsync, 1);
        // Each circuit holds its hop (at the relay) and stop (at the target) stream open while it lasts.
        yield return new StreamProtocol(Core.Libp2p.Relay.CircuitRelay.HopProtocolId, _relayService.ServeHopAsync, 64);
        yield return new StreamProtocol(Core.Libp2p.Relay.CircuitRelay.StopProtocolId, _relayClient.ServeStopAsync, 64);
        yield return new StreamProtocol(Core.Libp2p.HolePunch.HolePunchMessage.ProtocolId, _holePunch.ServeAsync, 1);
        if (_options.SessionHandler is not null)
        {
            yield return new StreamProtocol(_options.SessionProtocol, AcceptSessionStreamAsync, 1);
        }
    }

    /// <summary>Our identify message for <paramref name="session"/>'s peer: the protocols it may use, where it is seen from.</summary>
    private IdentifyMessage DescribeFor(PeerSession session) => IdentifyService.Describe(_identity,
        [.. ListenEndPoints().Select(MultiaddrBytes.From), .. _relayClient.CircuitAddresses],
        _router.ProtocolsFor(session),
        session.RemoteEndPoint is { } remote ? MultiaddrBytes.From(remote) : null);

    private async Task ServeIdentifyAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        await _identify.RespondAsync(stream, DescribeFor(session), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Asks the peer who it is (agent, protocols, addresses); a failure only leaves <see cref="PeerSession.Identified"/> empty.</summary>
    private async Task IdentifyPeerAsync(PeerSession session, CancellationToken cancellationToken)
    {
        try
        {
            // Null when the peer left before it took the stream (opened and closed the connection at once): no exceptions for that.
            if (await _identify.RequestOverAsync(session.Muxer, session.PeerId, _negotiation, cancellationToken).ConfigureAwait(false) is not { } info)
            {
                NetworkLog.IdentifyFailed(_logger, session.PeerId.Text, "the connection ended first");
                return;
            }
            session.Identified = info;
            if (info.ObservedAddr is { } observed && Multiaddr.TryFromBytes(observed, out var seen, out _) && NodeReach.TcpEndPoint(seen) is { } seenAt)
            {
                // A candidate for AutoNAT to confirm, advertised only once confirmed: the IP the peer sees with our
                // listen port (an outbound connection's observed port is an ephemeral one).
                var candidate = new IPEndPoint(seenAt.Address, LocalEndPoint.Port);
                if (!ListenAddresses.Expand(LocalEndPoint).Contains(candidate))
                {
                    Reach.AddObserved(candidate);
                }
            }
            // The peer answered: it accepts this node.
            session.MarkEstablished();
            PeerIdentified?.Invoke(session);
            NetworkLog.Identified(_logger, session.PeerId.Text, info.AgentVersion, info.Protocols.Count);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            NetworkLog.IdentifyFailed(_logger, session.PeerId.Text, e.Message);
        }
    }

    /// <summary>Pings the peer of an open session over <c>/ipfs/ping/1.0.0</c> <paramref name="count"/> times; returns the round-trip times.</summary>
    public async Task<IReadOnlyList<TimeSpan>> PingAsync(PeerSession session, int count, TimeSpan interval, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        await using var stream = await session.OpenStreamAsync(PingService.ProtocolId, cancellationToken).ConfigureAwait(false);
        var times = new List<TimeSpan>(count);
        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                await Task.Delay(interval, _options.Time, cancellationToken).ConfigureAwait(false);
            }
            times.Add(await _ping.PingAsync(stream, cancellationToken).ConfigureAwait(false));
        }
        await StreamClosing.CloseAsync(stream, _options.StreamTimeout, _options.Time).ConfigureAwait(false);
        return times;
    }

    /// <summary>
    /// Pings the peer a multiaddr (or <c>HOST:PORT</c>) names with <c>/p2p/PEERID</c>: over the open session, or a new
    /// connection (the peer must be trusted), <paramref name="count"/> times a second apart. Throws
    /// <see cref="SecureMeshException"/>: InvalidInput for an address without a peer, Unauthorized for an untrusted
    /// peer, Network when it cannot be reached or does not answer.
    /// </summary>
    public async Task<(PeerId Peer, IReadOnlyList<TimeSpan> Rtts)> PingAddressAsync(string address, int count, CancellationToken cancellationToken)
    {
        var peer = Relay.CircuitAddress.TryParse(address, out var circuit)
            ? circuit.Target ?? throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"{address.Trim()} names no peer: end it with /p2p/PEERID")
            : DialAddress.Parse(address).PeerId ?? throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"{DialAddress.Parse(address).Text} names no peer: end it with /p2p/PEERID");
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var session = GetSession(peer) ?? await ConnectAsync(peer, address, cancellationToken).ConfigureAwait(false);
        try
        {
            return (peer, await PingAsync(session, count, TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false));
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.NotFound)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"{peer} does not answer pings: {e.Message}", e);
        }
    }

    /// <summary>The peer opened this connection's session stream: run the session handler on it.</summary>
    private async Task AcceptSessionStreamAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        // One session stream per connection, opened by the dialler.
        if (session.Direction != ConnectionDirection.Inbound || !session.TryTakeSessionStream())
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a session stream the peer may not open");
        }
        await RunHandlerAsync(session, new MessageStream(stream, _options.MaxMessageSize), cancellationToken).ConfigureAwait(false);
    }

    private async Task RunHandlerAsync(PeerSession session, MessageStream messages, CancellationToken cancellationToken)
    {
        session.Messages = messages;
        try
        {
            await _options.SessionHandler!(session, cancellationToken).ConfigureAwait(false);
            session.RequestClose("handler finished");
        }
        catch (OperationCanceledException)
        {
            session.RequestClose(_stopping.IsCancellationRequested ? "node stopping" : "closed");
        }
        catch (Exception e) when (e is SecureMeshException or IOException)
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
            // Our last words (an error reply) go out before the end of the stream; the connection closes right after, and
            // closing it ends the stream without a reset that could make the peer drop them unread.
            try
            {
                using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(2), _options.Time);
                await messages.CompleteSendingAsync(wait.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SecureMeshException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
            {
            }
        }
    }

    private async Task RunSessionAsync(PeerSession session)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(session.Closing, _stopping.Token);
        var token = linked.Token;
        var streams = new List<Task>();
        try
        {
            var accept = AcceptStreamsAsync(session, streams, token);
            _ = IdentifyPeerAsync(session, token);
            if (_options.SessionHandler is not null && session.Direction == ConnectionDirection.Outbound && session.TryTakeSessionStream())
            {
                Stream? opened = null;
                try
                {
                    opened = await session.OpenStreamAsync(_options.SessionProtocol, token).ConfigureAwait(false);
                }
                catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.NotFound)
                {
                    // A libp2p node that does not speak our protocol (a stock node pinging us): the connection stays for identify and ping.
                }
                if (opened is not null)
                {
                    await RunHandlerAsync(session, new MessageStream(opened, _options.MaxMessageSize), token).ConfigureAwait(false);
                }
            }
            // The session lasts until it is closed (by us, the handler, a trust change) or the connection ends.
            await Task.WhenAny(accept, Task.Delay(Timeout.Infinite, token)).ConfigureAwait(false);
            if (accept.IsCompleted)
            {
                session.RequestClose(session.Muxer.ClosedReason ?? "the peer closed the connection");
            }
        }
        catch (OperationCanceledException)
        {
            session.RequestClose(_stopping.IsCancellationRequested ? "node stopping" : "closed");
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException)
        {
            session.RequestClose(e.Message);
        }
        finally
        {
            session.RequestClose(_stopping.IsCancellationRequested ? "node stopping" : "closed");
            // Gone from the table before its end is recorded: whoever sees the record and dials again gets a new
            // connection. Marked as ending meanwhile, so the connector, which finds neither the session nor (yet) a
            // refusal, does not redial before the refusal's backoff and count two refusals for one.
            _ending.AddOrUpdate(session.PeerId, 1, (_, n) => n + 1);
            try
            {
                lock (_sessionsGate)
                {
                    _sessions.TryRemove(new KeyValuePair<PeerId, PeerSession>(session.PeerId, session));
                }
                AfterSession(session);
            }
            finally
            {
                if (_ending.AddOrUpdate(session.PeerId, 0, (_, n) => n - 1) == 0)
                {
                    _ending.TryRemove(new KeyValuePair<PeerId, int>(session.PeerId, 0));
                }
            }
            await session.Muxer.DisposeAsync().ConfigureAwait(false);
            await session.Connection.DisposeAsync().ConfigureAwait(false);
            Task[] pending;
            lock (streams)
            {
                pending = [.. streams];
            }
            try
            {
                await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
            NodeLog.SessionClosed(_logger, session.PeerId.Text, session.CloseReason ?? "closed");
            SessionClosed?.Invoke(session);
        }
    }

    /// <summary>
    /// Takes every stream the peer opens and routes it, until the connection ends. The wait is not cancelled by
    /// <paramref name="token"/>: a closing session disposes its muxer (RunSessionAsync), which ends the wait without an
    /// exception, as the peer's end of the connection does.
    /// </summary>
    private async Task AcceptStreamsAsync(PeerSession session, List<Task> streams, CancellationToken token)
    {
        try
        {
            while (!token.IsCancellationRequested)
            {
                if (await session.Muxer.AcceptStreamOrEndAsync(CancellationToken.None).ConfigureAwait(false) is not { } stream)
                {
                    return;
                }
                var task = Task.Run(() => _router.ServeAsync(session, stream, token), CancellationToken.None);
                lock (streams)
                {
                    streams.RemoveAll(t => t.IsCompleted);
                    streams.Add(task);
                }
            }
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or ObjectDisposedException or IOException)
        {
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

    /// <summary>Sessions that have left the table and whose end is being recorded, by peer.</summary>
    private readonly ConcurrentDictionary<PeerId, int> _ending = new();

    /// <summary>True while a session with <paramref name="peer"/> has left the table but its end (a refusal) is not recorded yet.</summary>
    internal bool IsEnding(PeerId peer) => _ending.ContainsKey(peer);

    /// <summary>Records how a session ended: a refusal by the peer, or a hang-up before any word (it may not trust us yet).</summary>
    private void AfterSession(PeerSession session)
    {
        if (session.RefusedByPeer)
        {
            RecordRefusal(session.PeerId);
        }
        var peer = session.PeerId;
        var reason = session.RefusedByPeer ? "refused by the peer" : session.CloseReason ?? "closed";
        if (_handshakes.TryGetValue(peer, out var note) && note.At == session.Since && string.Equals(note.Sas, session.ShortAuthString, StringComparison.Ordinal))
        {
            _handshakes[peer] = note with { Ended = reason };
        }
        if (!session.RefusedByPeer && !session.Established && session.Direction == ConnectionDirection.Outbound
            && !_stopping.IsCancellationRequested && _sasShown.TryAdd(peer, 0))
        {
            // The peer hung up before saying anything: most likely this node is pending there. Show the words once so
            // the two people can compare them before the other side trusts this one.
            NodeLog.HungUpBeforeHello(_logger, peer.Text, session.ShortAuthString);
        }
    }

    /// <summary>Counts one more refusal by <paramref name="peer"/> (it has blocked this node), which sets the connector's backoff.</summary>
    private void RecordRefusal(PeerId peer)
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
        using var stop = timer.StopOn(_stopping.Token);
        try
        {
            while (await timer.WaitForNextTickAsync())
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
                FlushSeen();
                AnnounceIfChanged();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private void FlushSeen()
    {
        try
        {
            _seen.Flush();
        }
        catch (Exception e) when (e is SecureMeshException or ObjectDisposedException)
        {
            // Only last-seen times are lost; a database closed before the node is the caller's choice.
            NodeLog.StoreFailed(_logger, e.Message);
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
        await _relayClient.DisposeAsync();
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
        FlushSeen();
        NodeLog.Stopped(_logger);
        _stopping.Dispose();
    }
}

/// <summary>
/// The last authenticated handshake with a trusted peer: its short authentication string (the same words on both
/// sides), when, which side dialled, and how the session ended (null while it is open).
/// </summary>
public sealed record HandshakeNote(PeerId PeerId, string Sas, DateTimeOffset At, ConnectionDirection Direction, string? Remote, string? Ended);
