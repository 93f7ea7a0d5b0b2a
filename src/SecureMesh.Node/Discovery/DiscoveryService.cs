using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Discovery;

/// <summary>How LAN discovery runs.</summary>
internal sealed class DiscoveryOptions
{
    /// <summary>The default multicast group (organisation-local scope) and port.</summary>
    public static readonly IPEndPoint DefaultGroup = new(IPAddress.Parse("239.192.47.47"), 4748);

    /// <summary>Where beacons go and are heard.</summary>
    public IPEndPoint Group { get; init; } = DefaultGroup;

    /// <summary>Time between beacons.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Local IPv4 address whose interface sends and joins the group; null lets the routing table choose.</summary>
    public IPAddress? Interface { get; init; }

    /// <summary>Beacons are accepted within ± this of now.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Least time between two dials of the same discovered peer.</summary>
    public TimeSpan DialBackoff { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a dial of a discovered peer may take.</summary>
    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most signature checks per second (a flood of forged beacons costs at most this much CPU).</summary>
    public int MaxVerificationsPerSecond { get; init; } = 200;

    /// <summary>
    /// Most signature checks per second for datagrams from one source address, so one LAN host sending well-formed
    /// forgeries cannot spend the whole budget (a real node sends one beacon per <see cref="Interval"/>).
    /// </summary>
    public int MaxVerificationsPerSourcePerSecond { get; init; } = 10;

    public TimeProvider Time { get; init; } = TimeProvider.System;

    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;
}

/// <summary>
/// Signed UDP multicast beacons on the LAN. A trusted peer heard this way gets the address recorded (source
/// <see cref="AddressSource.Discovered"/>) and is dialled when not connected; any other peer is only listed in
/// <see cref="DiscoveredPeers"/>. Unsigned, forged, stale, replayed, own and malformed datagrams are ignored.
/// Where multicast is unavailable it logs a warning and stays off; the node runs on.
/// </summary>
internal sealed class DiscoveryService : IAsyncDisposable
{
    private readonly NodeIdentity _identity;
    private readonly MeshNode _node;
    private readonly SecureMeshDatabase _db;
    private readonly DiscoveryOptions _options;
    private readonly ILogger _logger;
    private readonly BeaconValidator _validator;
    private readonly ConcurrentDictionary<PeerId, long> _lastDial = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _disposing = new();
    private Runner? _runner;
    private volatile bool _unavailable;
    private readonly Dictionary<IPAddress, int> _sourceBudget = [];
    private long _sourceWindow;
    private long _verifyWindow;
    private int _verifyCount;
    private int _sent;
    private int _accepted;
    private int _ignored;

    public DiscoveryService(NodeIdentity identity, MeshNode node, SecureMeshDatabase db, DiscoveredPeers registry, DiscoveryOptions options)
    {
        _identity = identity;
        _node = node;
        _db = db;
        Registry = registry;
        _options = options;
        _logger = options.LoggerFactory.CreateLogger("SecureMesh.Discovery");
        _validator = new BeaconValidator(identity.PeerId, options.Time, options.Window);
    }

    /// <summary>Peers heard by beacon.</summary>
    public DiscoveredPeers Registry { get; }

    /// <summary><c>on</c>, <c>off</c>, or <c>unavailable</c> (multicast could not be set up).</summary>
    public string State => _runner is not null ? "on" : _unavailable ? "unavailable" : "off";

    internal int BeaconsSent => Volatile.Read(ref _sent);

    internal int BeaconsAccepted => Volatile.Read(ref _accepted);

    internal int DatagramsIgnored => Volatile.Read(ref _ignored);

    /// <summary>Starts or stops beaconing and listening at once.</summary>
    public async Task SetEnabledAsync(bool enabled, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (enabled && _runner is null)
            {
                _runner = TryStart();
            }
            else if (!enabled && _runner is { } runner)
            {
                _runner = null;
                _unavailable = false;
                await runner.StopAsync();
                DiscoveryLog.Stopped(_logger);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private Runner? TryStart()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            // Several nodes on one host (tests, several users) all hear the group.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(IPAddress.Any, _options.Group.Port));
            var iface = _options.Interface is { } a && !a.Equals(IPAddress.Any) ? a : null;
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.AddMembership, new MulticastOption(_options.Group.Address, iface ?? IPAddress.Any));
            if (iface is not null)
            {
                socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, iface.GetAddressBytes());
            }
            // Beacons stay on the link.
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive, 1);
            socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastLoopback, true);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            _unavailable = true;
            DiscoveryLog.Unavailable(_logger, e.Message);
            return null;
        }
        _unavailable = false;
        DiscoveryLog.Started(_logger, _options.Group.ToString(), _options.Interval);
        return new Runner(this, socket);
    }

    private async Task SendLoopAsync(Socket socket, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.Interval, _options.Time);
        // Stopped by disposing the timer, without a cancellation exception (TimerStop), as the node's other loops are.
        using var stop = timer.StopOn(cancellationToken);
        var warned = false;
        try
        {
            do
            {
                var port = (ushort)_node.LocalEndPoint.Port;
                var datagram = BeaconCodec.Encode(_identity, port, _options.Time.GetUtcNow().ToUnixTimeMilliseconds());
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(2));
                try
                {
                    await socket.SendToAsync(datagram, SocketFlags.None, _options.Group, timeout.Token);
                    Interlocked.Increment(ref _sent);
                    warned = false;
                }
                catch (SocketException e)
                {
                    // No route for multicast, interface down: keep trying quietly.
                    if (!warned)
                    {
                        DiscoveryLog.SendFailed(_logger, e.Message);
                        warned = true;
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                }
            }
            while (await timer.WaitForNextTickAsync());
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task ReceiveLoopAsync(Socket socket, CancellationToken cancellationToken)
    {
        // Room for any datagram; anything but an exact-length beacon is dropped by the codec.
        var buffer = new byte[2048];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!cancellationToken.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            if (received.RemoteEndPoint is not IPEndPoint remote)
            {
                continue;
            }
            HandleDatagram(buffer.AsSpan(0, received.ReceivedBytes), remote);
        }
    }

    /// <summary>
    /// Checks one datagram and acts on it; never throws. The cheap checks (length, magic, version, own key, time window)
    /// come first and charge nothing: junk never spends the verification budget. What passes them is charged to its
    /// source address's budget and then to the global one before its signature is checked.
    /// </summary>
    internal BeaconVerdict HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint remote)
    {
        var verdict = _validator.Precheck(datagram);
        if (verdict != BeaconVerdict.Accepted)
        {
            // Not counted as a verification: no work was done beyond looking at a few bytes.
        }
        else if (!TakeSourceBudget(remote.Address) || !TakeVerificationBudget())
        {
            verdict = BeaconVerdict.CacheFull;
        }
        else
        {
            verdict = _validator.Check(datagram, out var beacon);
            if (verdict == BeaconVerdict.Accepted)
            {
                Interlocked.Increment(ref _accepted);
                OnBeacon(beacon, remote.Address);
                return verdict;
            }
        }
        Interlocked.Increment(ref _ignored);
        if (verdict != BeaconVerdict.Own)
        {
            DiscoveryLog.Ignored(_logger, remote.ToString(), verdict);
        }
        return verdict;
    }

    private bool TakeSourceBudget(IPAddress source)
    {
        source = source.IsIPv4MappedToIPv6 ? source.MapToIPv4() : source;
        var second = Environment.TickCount64 / 1000;
        lock (_sourceBudget)
        {
            if (_sourceWindow != second)
            {
                _sourceWindow = second;
                _sourceBudget.Clear();
            }
            _sourceBudget.TryGetValue(source, out var used);
            if (used >= _options.MaxVerificationsPerSourcePerSecond)
            {
                return false;
            }
            // Past this many sources in one second (spoofed addresses), only the global budget applies to newcomers.
            if (used > 0 || _sourceBudget.Count < 4096)
            {
                _sourceBudget[source] = used + 1;
            }
            return true;
        }
    }

    private bool TakeVerificationBudget()
    {
        var second = Environment.TickCount64 / 1000;
        if (Interlocked.Exchange(ref _verifyWindow, second) != second)
        {
            Interlocked.Exchange(ref _verifyCount, 0);
        }
        return Interlocked.Increment(ref _verifyCount) <= _options.MaxVerificationsPerSecond;
    }

    private void OnBeacon(Beacon beacon, IPAddress source)
    {
        var address = source.IsIPv4MappedToIPv6 ? source.MapToIPv4() : source;
        var endPoint = new IPEndPoint(address, beacon.Port);
        PeerRecord? record;
        try
        {
            record = _db.Trust.GetPeer(beacon.PeerId);
        }
        catch (SecureMeshException e)
        {
            DiscoveryLog.StoreFailed(_logger, e.Message);
            return;
        }
        if (record?.State == PeerState.Blocked)
        {
            return;
        }
        var known = Registry.Get(beacon.PeerId);
        Registry.Record(beacon.PeerId, endPoint);
        if (known is null || !known.EndPoint.Equals(endPoint))
        {
            DiscoveryLog.Discovered(_logger, record?.State.ToString().ToLowerInvariant() ?? "unknown", beacon.PeerId.Text, endPoint.ToString());
        }
        if (record?.State != PeerState.Trusted)
        {
            return;
        }
        var text = PeerAddressFormat.FromEndPoint(endPoint);
        try
        {
            if (!record.Addresses.Any(a => string.Equals(a.Address, text, StringComparison.Ordinal)))
            {
                _db.Trust.AddAddress(beacon.PeerId, text, AddressSource.Discovered);
            }
        }
        catch (SecureMeshException e)
        {
            DiscoveryLog.StoreFailed(_logger, e.Message);
        }
        if (_node.GetSession(beacon.PeerId) is null && ShouldDial(beacon.PeerId, known))
        {
            _ = DialAsync(beacon.PeerId, endPoint);
        }
    }

    private bool ShouldDial(PeerId peer, DiscoveredPeer? known)
    {
        // When both sides dial at once each keeps its own outbound connection and drops the other's, so only the lower
        // Peer ID dials at first; the higher one dials too if still unconnected after a few beacons.
        var now = _options.Time.GetUtcNow();
        var lower = _identity.PeerId.PublicKey.SequenceCompareTo(peer.PublicKey) < 0;
        if (!lower && (known is null || now - known.FirstSeen < 3 * _options.Interval))
        {
            return false;
        }
        var nowMs = now.ToUnixTimeMilliseconds();
        var backoff = (long)_options.DialBackoff.TotalMilliseconds;
        while (true)
        {
            if (_lastDial.TryGetValue(peer, out var last))
            {
                if (nowMs - last < backoff)
                {
                    return false;
                }
                if (_lastDial.TryUpdate(peer, nowMs, last))
                {
                    return true;
                }
            }
            else if (_lastDial.TryAdd(peer, nowMs))
            {
                return true;
            }
        }
    }

    private async Task DialAsync(PeerId peer, IPEndPoint endPoint)
    {
        DiscoveryLog.Dialling(_logger, peer.Text, endPoint.ToString());
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposing.Token);
        timeout.CancelAfter(_options.DialTimeout);
        try
        {
            await _node.ConnectAsync(peer, endPoint, timeout.Token);
        }
        catch (OperationCanceledException)
        {
            DiscoveryLog.DialFailed(_logger, peer.Text, endPoint.ToString(), "timed out");
        }
        catch (Exception e) when (e is SecureMeshException or SocketException or IOException or ObjectDisposedException)
        {
            DiscoveryLog.DialFailed(_logger, peer.Text, endPoint.ToString(), e.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _disposing.CancelAsync();
        await SetEnabledAsync(false, CancellationToken.None);
        _gate.Dispose();
        _disposing.Dispose();
    }

    /// <summary>One period of being on: the socket and its two loops.</summary>
    private sealed class Runner
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _send;
        private readonly Task _receive;

        public Runner(DiscoveryService owner, Socket socket)
        {
            _socket = socket;
            Token = _stop.Token;
            _send = Task.Run(() => owner.SendLoopAsync(socket, Token));
            _receive = Task.Run(() => owner.ReceiveLoopAsync(socket, Token));
        }

        public CancellationToken Token { get; }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            _socket.Dispose();
            try
            {
                await Task.WhenAll(_send, _receive).WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (TimeoutException)
            {
            }
            _stop.Dispose();
        }
    }
}
