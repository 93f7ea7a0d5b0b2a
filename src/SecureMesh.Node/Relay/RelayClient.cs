using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Relay;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Relay;

/// <summary>A reservation this node holds on a relay, and the circuit addresses it gives.</summary>
public sealed record RelayReservationInfo(PeerId Relay, DateTimeOffset Expire, IReadOnlyList<string> Addresses, RelayLimit? Limit);

/// <summary>
/// The client's side of circuit relay v2: keeps a reservation on every relay this node uses (those of the <c>relays</c>
/// setting, dialled when not connected, and every trusted peer connected directly that offers the hop protocol and is
/// known to be reachable, see <see cref="KnownReachable"/>),
/// renews each before it expires, and advertises the circuit addresses in identify; dials peers through a relay (hop
/// CONNECT) and takes circuits a relay brings (stop). Either way the circuit then runs the ordinary upgrade — Noise
/// authenticates the peer end to end, so a relay that connects us to anyone else is caught — and the connection is
/// authorized like any other (default deny).
/// </summary>
internal sealed class RelayClient : IAsyncDisposable
{
    private readonly MeshNode _node;
    private readonly SecureMeshDatabase _db;
    private readonly RelayOptions _options;
    private readonly TimeSpan _streamTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<PeerId, (PeerSession Session, RelayReservationInfo Info)> _reservations = new();
    private readonly ConcurrentDictionary<PeerId, long> _retryAt = new();
    private readonly ConcurrentDictionary<PeerId, byte> _busy = new();
    private readonly CancellationTokenSource _stopping = new();
    private RelaySettings _settings = RelaySettings.Default;
    private Task _loop = Task.CompletedTask;

    public RelayClient(MeshNode node, SecureMeshDatabase db, RelayOptions options, TimeSpan streamTimeout, TimeProvider time, ILogger logger)
    {
        _node = node;
        _db = db;
        _options = options;
        _streamTimeout = streamTimeout;
        _time = time;
        _logger = logger;
        Refresh();
    }

    /// <summary>The relay settings as last read (every <see cref="RelayOptions.ClientInterval"/>).</summary>
    public RelaySettings Settings => Volatile.Read(ref _settings);

    /// <summary>The reservations held now.</summary>
    public IReadOnlyList<RelayReservationInfo> Reservations =>
        [.. _reservations.Values.Where(r => IsLive(r.Session, r.Info)).Select(r => r.Info)];

    /// <summary>The circuit addresses to advertise (binary multiaddrs).</summary>
    public IReadOnlyList<byte[]> CircuitAddresses =>
        [.. Reservations.SelectMany(r => r.Addresses).Take(16).Select(a => Multiaddr.Parse(a).ToBytes())];

    /// <summary>Starts reserving and renewing in the background.</summary>
    public void Start() => _loop = Task.Run(LoopAsync);

    /// <summary>
    /// The circuit addresses to try for <paramref name="target"/>: through every connected relay this node holds a
    /// reservation on or that offers the hop protocol (<c>/p2p/RELAY/p2p-circuit/p2p/TARGET</c>).
    /// </summary>
    public IReadOnlyList<string> CircuitsTo(PeerId target)
    {
        var relays = new List<PeerId>();
        foreach (var session in _node.Sessions)
        {
            if (!session.PeerId.Equals(target) && session.Path != ConnectionPath.Relayed
                && (_reservations.ContainsKey(session.PeerId) || UsableRelay(session)))
            {
                relays.Add(session.PeerId);
            }
        }
        return [.. relays.Select(r => $"/p2p/{r}/p2p-circuit/p2p/{target}")];
    }

    /// <summary>Opens a circuit to <paramref name="target"/> through <paramref name="relay"/>'s open session; returns the circuit stream.</summary>
    public async Task<Stream> OpenCircuitAsync(PeerSession relay, PeerId target, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(_streamTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        Stream stream;
        try
        {
            stream = await relay.OpenStreamAsync(CircuitRelay.HopProtocolId, linked.Token).ConfigureAwait(false);
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.NotFound)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"{relay.PeerId} offers no relay service to this node", e);
        }
        try
        {
            await CircuitRelay.WriteAsync(stream, new HopMessage(HopType.Connect) { Peer = new RelayPeer(target) }, linked.Token).ConfigureAwait(false);
            var answer = await CircuitRelay.ReadHopAsync(stream, linked.Token).ConfigureAwait(false);
            if (answer.Type != HopType.Status || answer.Status != RelayStatus.Ok)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network,
                    $"relay {relay.PeerId} did not open a circuit to {target}: {answer.Status?.ToString() ?? answer.Type.ToString()}");
            }
            return stream;
        }
        catch (Exception e)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            if (e is OperationCanceledException && deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network, $"relay {relay.PeerId} did not answer in time", e);
            }
            throw;
        }
    }

    /// <summary>
    /// Serves a stop stream from a relay this node is connected to: takes the circuit, runs the ordinary inbound upgrade over
    /// it and keeps it for as long as the relayed connection lasts.
    /// </summary>
    public async Task ServeStopAsync(PeerSession relay, Stream stream, CancellationToken cancellationToken)
    {
        StopMessage request;
        using (var deadline = new CancellationTokenSource(_streamTimeout, _time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token))
        {
            try
            {
                request = await CircuitRelay.ReadStopAsync(stream, linked.Token).ConfigureAwait(false);
            }
            catch (SecureMeshException)
            {
                await AnswerAsync(stream, RelayStatus.MalformedMessage, linked.Token).ConfigureAwait(false);
                throw;
            }
            if (!_reservations.TryGetValue(relay.PeerId, out var held) || !IsLive(held.Session, held.Info))
            {
                // Only a relay this node reserved a slot on may bring it circuits.
                RelayLog.InboundCircuitRefused(_logger, request.Peer?.Id.Text ?? "?", relay.PeerId.Text, "no reservation on that relay");
                await AnswerAsync(stream, RelayStatus.PermissionDenied, linked.Token).ConfigureAwait(false);
                return;
            }
            if (request.Type != StopType.Connect || request.Peer is null)
            {
                await AnswerAsync(stream, RelayStatus.UnexpectedMessage, linked.Token).ConfigureAwait(false);
                return;
            }
            await AnswerAsync(stream, RelayStatus.Ok, linked.Token).ConfigureAwait(false);
        }
        PeerSession? session;
        try
        {
            session = await _node.AcceptCircuitAsync(stream, relay.PeerId, request.Peer.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (SecureMeshException e)
        {
            RelayLog.InboundCircuitRefused(_logger, request.Peer.Id.Text, relay.PeerId.Text, e.Message);
            throw;
        }
        if (session is not null)
        {
            // The stop stream is the connection: it stays open as long as the session runs.
            await session.Completion.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool UsableRelay(PeerSession session) =>
        OffersHop(session) && KnownReachable(session.Path, session.Direction, session.RemoteEndPoint, NodeReach.TcpEndPoints(session.Identified?.ListenAddrs ?? []));

    /// <summary>
    /// Whether a peer is reachable enough to be a default relay, from what this node knows of it: a direct connection
    /// (never relayed or hole-punched) that this node dialled itself (reached where it listens; the fallback, and all a
    /// private network can show), or one it dialled in from a public IP at which it also advertises a TCP address in
    /// identify (a public listen address, its router's mapping or an address AutoNAT confirmed: it says it is reachable
    /// where we see it, so others can dial it there).
    /// </summary>
    internal static bool KnownReachable(ConnectionPath path, ConnectionDirection direction, System.Net.IPEndPoint? remote, IEnumerable<System.Net.IPEndPoint> advertised)
    {
        if (path != ConnectionPath.Direct)
        {
            return false;
        }
        if (direction == ConnectionDirection.Outbound)
        {
            return true;
        }
        if (remote is null)
        {
            return false;
        }
        var seen = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;
        return !AutoNat.AutoNatOptions.IsPrivate(seen)
            && advertised.Any(a => a.Port != 0 && (a.Address.IsIPv4MappedToIPv6 ? a.Address.MapToIPv4() : a.Address).Equals(seen));
    }

    private static bool OffersHop(PeerSession session) =>
        session.Identified?.Protocols.Contains(CircuitRelay.HopProtocolId, StringComparer.Ordinal) == true;

    private bool IsLive(PeerSession session, RelayReservationInfo info) =>
        !session.Closing.IsCancellationRequested && info.Expire > _time.GetUtcNow() && ReferenceEquals(_node.GetSession(info.Relay), session);

    private void Refresh()
    {
        try
        {
            Volatile.Write(ref _settings, RelaySettings.Read(_db.Config));
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
        }
    }

    private async Task LoopAsync()
    {
        var token = _stopping.Token;
        try
        {
            using var timer = new PeriodicTimer(_options.ClientInterval, _time);
            using var stop = timer.StopOn(token);
            do
            {
                await TickAsync(token).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync().ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>One round: read the settings, drop dead reservations, dial configured relays, reserve or renew where due.</summary>
    internal async Task TickAsync(CancellationToken cancellationToken)
    {
        Refresh();
        var changed = false;
        foreach (var (relay, r) in _reservations)
        {
            if (!IsLive(r.Session, r.Info))
            {
                changed |= _reservations.TryRemove(relay, out _);
            }
        }
        var now = _time.GetTimestamp();
        var wanted = new Dictionary<PeerId, Multiaddr?>();
        foreach (var address in Settings.Relays)
        {
            wanted[address.LastPeerId(out _)!] = address;
        }
        foreach (var session in _node.Sessions)
        {
            // A trusted peer that offers relay service and is known reachable (KnownReachable) is used as a relay too.
            if (UsableRelay(session))
            {
                wanted.TryAdd(session.PeerId, null);
            }
        }
        var work = new List<Task<bool>>();
        foreach (var (relay, address) in wanted)
        {
            if (relay.Equals(_node.PeerId) || (_retryAt.TryGetValue(relay, out var at) && at > now) || !_busy.TryAdd(relay, 0))
            {
                continue;
            }
            work.Add(ReserveIfDueAsync(relay, address, cancellationToken));
        }
        foreach (var result in await Task.WhenAll(work).ConfigureAwait(false))
        {
            changed |= result;
        }
        if (changed)
        {
            await _node.PushIdentifyAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reserves on <paramref name="relay"/> (dialling it first when it is a configured relay not connected) when due; true when the reservations changed.</summary>
    private async Task<bool> ReserveIfDueAsync(PeerId relay, Multiaddr? address, CancellationToken cancellationToken)
    {
        try
        {
            var session = _node.GetSession(relay);
            if (_reservations.TryGetValue(relay, out var held) && ReferenceEquals(held.Session, session) && !DueForRenewal(held.Info))
            {
                return false;
            }
            if (session is null || session.Path == ConnectionPath.Relayed)
            {
                if (address is null)
                {
                    return false;
                }
                session = await _node.ConnectAsync(relay, address.ToString(), cancellationToken).ConfigureAwait(false);
            }
            var info = await ReserveAsync(session, cancellationToken).ConfigureAwait(false);
            _reservations[relay] = (session, info);
            _retryAt.TryRemove(relay, out _);
            RelayLog.Reserved(_logger, relay.Text, info.Expire, info.Addresses.FirstOrDefault() ?? "(no address)");
            return held.Info is null || !held.Info.Addresses.SequenceEqual(info.Addresses, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            if (address is not null)
            {
                RelayLog.RelayUnusable(_logger, relay.Text, e.Message);
            }
            else
            {
                RelayLog.ReservationFailed(_logger, relay.Text, e.Message);
            }
            _retryAt[relay] = _time.GetTimestamp() + (long)(_options.RetryAfterFailure.TotalSeconds * _time.TimestampFrequency);
            return _reservations.TryRemove(relay, out _);
        }
        finally
        {
            _busy.TryRemove(relay, out _);
        }
    }

    private bool DueForRenewal(RelayReservationInfo info)
    {
        var left = info.Expire - _time.GetUtcNow();
        return left <= _options.ReservationTtl * _options.RenewAtRemaining || left <= TimeSpan.FromSeconds(30);
    }

    /// <summary>Sends RESERVE on a new hop stream; the reservation, or <see cref="SecureMeshException"/> (Network) with the relay's status.</summary>
    internal async Task<RelayReservationInfo> ReserveAsync(PeerSession relay, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(_streamTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        HopMessage answer;
        await using (var stream = await relay.OpenStreamAsync(CircuitRelay.HopProtocolId, linked.Token).ConfigureAwait(false))
        {
            await CircuitRelay.WriteAsync(stream, new HopMessage(HopType.Reserve), linked.Token).ConfigureAwait(false);
            answer = await CircuitRelay.ReadHopAsync(stream, linked.Token).ConfigureAwait(false);
            await StreamClosing.CloseAsync(stream, _streamTimeout, _time).ConfigureAwait(false);
        }
        if (answer.Type != HopType.Status || answer.Status != RelayStatus.Ok || answer.Reservation is not { } reservation)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, $"the relay answered {answer.Status?.ToString() ?? answer.Type.ToString()}");
        }
        var now = _time.GetUtcNow();
        var expire = reservation.Expire > (ulong)DateTimeOffset.MaxValue.ToUnixTimeSeconds()
            ? DateTimeOffset.MaxValue
            : DateTimeOffset.FromUnixTimeSeconds((long)reservation.Expire);
        if (expire <= now)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the relay granted a reservation that has already expired");
        }
        // The relay's addresses (each ending in its Peer ID), or where we reached it when it gave none we can use.
        var bases = new List<string>();
        foreach (var raw in reservation.Addrs)
        {
            if (Multiaddr.TryFromBytes(raw, out var ma, out _) && ma.LastPeerId(out _) is { } named && named.Equals(relay.PeerId)
                && !ma.Components.Any(c => c.Protocol == MultiaddrProtocol.P2pCircuit))
            {
                bases.Add(ma.ToString());
            }
        }
        if (bases.Count == 0 && relay.RemoteEndPoint is { } remote)
        {
            bases.Add(Multiaddr.FromEndPoint(remote, relay.PeerId).ToString());
        }
        var me = _node.PeerId.Text;
        return new RelayReservationInfo(relay.PeerId, expire, [.. bases.Take(8).Select(b => $"{b}/p2p-circuit/p2p/{me}")], answer.Limit);
    }

    private static async Task AnswerAsync(Stream stream, RelayStatus status, CancellationToken cancellationToken)
    {
        try
        {
            await CircuitRelay.WriteAsync(stream, new StopMessage(StopType.Status) { Status = status }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }
}
