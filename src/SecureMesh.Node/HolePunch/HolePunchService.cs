using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.HolePunch;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.HolePunch;

/// <summary>
/// DCUtR over TCP (relay/DCUtR.md, <c>/libp2p/dcutr</c>): on every relayed connection the side that accepted it (the
/// peer behind the relay) opens the DCUtR stream, sends CONNECT with its observed addresses and times the answer (the
/// other side's CONNECT), sends SYNC and dials after half the round trip; the other side dials as soon as SYNC arrives.
/// Both dial from their listen port (SO_REUSEPORT), so each NAT sees the same mapping the relay observed and the two SYNs
/// cross: a TCP simultaneous open. The initiator takes the client's role in the upgrade (Noise initiator). Up to three
/// attempts on the one stream; on success the direct connection replaces the relayed one, otherwise the relayed one stays.
/// </summary>
internal sealed class HolePunchService
{
    /// <summary>Attempts per relayed connection (the spec's total of three).</summary>
    public const int MaxAttempts = 3;

    private readonly MeshNode _node;
    private readonly Upgrader _upgrader;
    private readonly TimeSpan _streamTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<Core.Identity.PeerId, byte> _punching = new();

    public HolePunchService(MeshNode node, Upgrader upgrader, TimeSpan streamTimeout, TimeProvider time, ILogger logger)
    {
        _node = node;
        _upgrader = upgrader;
        _streamTimeout = streamTimeout;
        _time = time;
        _logger = logger;
    }

    /// <summary>How long one direct dial may take (a lost SYN is retried by TCP after a second).</summary>
    public TimeSpan DialTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>True while a hole punch with <paramref name="peer"/> runs (a connection from it then counts as hole-punched).</summary>
    public bool IsPunching(Core.Identity.PeerId peer) => _punching.ContainsKey(peer);

    /// <summary>Starts the upgrade of a relayed connection this node accepted (the initiator's side); returns at once.</summary>
    public void OnSessionOpened(PeerSession session)
    {
        if (session.Path == ConnectionPath.Relayed && session.Direction == ConnectionDirection.Inbound)
        {
            _ = Task.Run(() => InitiateAsync(session));
        }
    }

    private async Task InitiateAsync(PeerSession session)
    {
        var peer = session.PeerId;
        if (!_punching.TryAdd(peer, 0))
        {
            return;
        }
        var failure = "no attempt made";
        try
        {
            // Let identify finish first: the relay's identify gave us our observed address.
            await Task.Delay(TimeSpan.FromMilliseconds(200), _time, session.Closing).ConfigureAwait(false);
            if (!ReferenceEquals(_node.GetSession(peer), session))
            {
                return;
            }
            await using var stream = await session.OpenStreamAsync(HolePunchMessage.ProtocolId, session.Closing).ConfigureAwait(false);
            for (var attempt = 1; attempt <= MaxAttempts; attempt++)
            {
                using var deadline = new CancellationTokenSource(_streamTimeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(session.Closing, deadline.Token);
                var started = _time.GetTimestamp();
                await new HolePunchMessage(HolePunchType.Connect, OurAddresses()).WriteAsync(stream, linked.Token).ConfigureAwait(false);
                var answer = await HolePunchMessage.ReadAsync(stream, linked.Token).ConfigureAwait(false);
                var rtt = _time.GetElapsedTime(started);
                if (answer.Type != HolePunchType.Connect)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Protocol, "expected CONNECT, got " + answer.Type);
                }
                var targets = Targets(answer.ObservedAddrs);
                await new HolePunchMessage(HolePunchType.Sync, []).WriteAsync(stream, linked.Token).ConfigureAwait(false);
                if (targets.Count == 0)
                {
                    failure = "the peer sent no address we can dial";
                    continue;
                }
                RelayLogFacade.Attempt(_logger, peer, attempt, rtt, targets);
                await Task.Delay(rtt / 2, _time, session.Closing).ConfigureAwait(false);
                var result = await PunchAsync(session, targets, initiator: true).ConfigureAwait(false);
                if (result is null)
                {
                    return;
                }
                failure = result;
            }
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            failure = e.Message;
        }
        finally
        {
            _punching.TryRemove(peer, out _);
        }
        if (!session.Closing.IsCancellationRequested)
        {
            Relay.RelayLog.HolePunchFailed(_logger, peer.Text, failure);
        }
    }

    /// <summary>The responder's side (the peer that dialled through the relay): answer each CONNECT, dial on SYNC.</summary>
    public async Task ServeAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        if (session.Path != ConnectionPath.Relayed || session.Direction != ConnectionDirection.Outbound)
        {
            // Only the side that accepted a relayed connection starts DCUtR, and only on it.
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "DCUtR on a connection that is not a relayed one we dialled");
        }
        var peer = session.PeerId;
        if (!_punching.TryAdd(peer, 0))
        {
            return;
        }
        try
        {
            for (var attempt = 1; attempt <= MaxAttempts; attempt++)
            {
                using var deadline = new CancellationTokenSource(_streamTimeout * 2, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
                HolePunchMessage connect;
                try
                {
                    connect = await HolePunchMessage.ReadAsync(stream, linked.Token).ConfigureAwait(false);
                }
                catch (SecureMeshException) when (attempt > 1)
                {
                    // The initiator gave up (the stream ended): the relayed connection stays.
                    return;
                }
                if (connect.Type != HolePunchType.Connect)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Protocol, "expected CONNECT, got " + connect.Type);
                }
                await new HolePunchMessage(HolePunchType.Connect, OurAddresses()).WriteAsync(stream, linked.Token).ConfigureAwait(false);
                var sync = await HolePunchMessage.ReadAsync(stream, linked.Token).ConfigureAwait(false);
                if (sync.Type != HolePunchType.Sync)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Protocol, "expected SYNC, got " + sync.Type);
                }
                var targets = Targets(connect.ObservedAddrs);
                if (targets.Count == 0)
                {
                    continue;
                }
                RelayLogFacade.Attempt(_logger, peer, attempt, TimeSpan.Zero, targets);
                if (await PunchAsync(session, targets, initiator: false).ConfigureAwait(false) is null)
                {
                    return;
                }
            }
        }
        finally
        {
            _punching.TryRemove(peer, out _);
        }
    }

    /// <summary>Dials every target at once from the listen port; the first socket that connects is upgraded and kept. Null on success, else why not.</summary>
    private async Task<string?> PunchAsync(PeerSession relayed, IReadOnlyList<IPEndPoint> targets, bool initiator)
    {
        using var timeout = new CancellationTokenSource(DialTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, relayed.Closing);
        var dials = targets.Select(t => DialFromListenPortAsync(t, linked.Token)).ToList();
        Socket? winner = null;
        var errors = new List<string>();
        while (dials.Count > 0)
        {
            var done = await Task.WhenAny(dials).ConfigureAwait(false);
            dials.Remove(done);
            var (socket, error) = await done.ConfigureAwait(false);
            if (socket is not null && winner is null)
            {
                winner = socket;
                await linked.CancelAsync().ConfigureAwait(false);
            }
            else
            {
                socket?.Dispose();
                if (error is not null)
                {
                    errors.Add(error);
                }
            }
        }
        // A SYN of the peer's may have reached our listener instead: that connection is taken by the node as hole-punched.
        if (_node.GetSession(relayed.PeerId) is { Path: ConnectionPath.HolePunched })
        {
            winner?.Dispose();
            return null;
        }
        if (winner is null)
        {
            return errors.Count == 0 ? "no answer" : string.Join("; ", errors.Distinct().Take(3));
        }
        var remote = (IPEndPoint)winner.RemoteEndPoint!;
        try
        {
            var stream = new NetworkStream(winner, ownsSocket: true);
            using var upgrade = new CancellationTokenSource(_streamTimeout, _time);
            var connection = initiator
                ? await _upgrader.UpgradeOutboundAsync(stream, relayed.PeerId, upgrade.Token, remote.ToString()).ConfigureAwait(false)
                : await _upgrader.UpgradeInboundAsync(stream, upgrade.Token, remote.ToString()).ConfigureAwait(false);
            var session = _node.AdoptHolePunched(connection, relayed.PeerId, initiator ? ConnectionDirection.Outbound : ConnectionDirection.Inbound, remote);
            if (session is null)
            {
                return "the direct connection was not kept";
            }
            Relay.RelayLog.HolePunchSucceeded(_logger, relayed.PeerId.Text, remote.ToString());
            return null;
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            return "upgrade of the direct connection failed: " + e.Message;
        }
    }

    private async Task<(Socket? Socket, string? Error)> DialFromListenPortAsync(IPEndPoint target, CancellationToken cancellationToken)
    {
        var local = _node.LocalEndPoint;
        var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (ReusePort.Supported && local.AddressFamily == target.AddressFamily)
            {
                ReusePort.Enable(socket);
                socket.Bind(local);
            }
            await socket.ConnectAsync(target, cancellationToken).ConfigureAwait(false);
            return (socket, null);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            socket.Dispose();
            return (null, e is SocketException se ? $"{target}: {se.SocketErrorCode}" : null);
        }
    }

    /// <summary>
    /// What we tell the peer: each address a directly connected peer observed us at, and its IP with our listen port (a
    /// NAT that keeps ports maps the listen port to itself); then our own non-loopback listen addresses.
    /// </summary>
    private List<byte[]> OurAddresses()
    {
        var port = _node.LocalEndPoint.Port;
        var found = new List<IPEndPoint>();
        foreach (var session in _node.Sessions)
        {
            if (session.Path != ConnectionPath.Relayed && session.Identified?.ObservedAddr is { } raw && ToEndPoint(raw) is { } observed)
            {
                found.Add(observed);
                found.Add(new IPEndPoint(observed.Address, port));
            }
        }
        found.AddRange(ListenAddresses.Expand(_node.LocalEndPoint).Where(e => !IPAddress.IsLoopback(e.Address)));
        return [.. found.Distinct().Take(HolePunchMessage.MaxAddrs / 2).Select(MultiaddrBytes.From)];
    }

    /// <summary>The peer's addresses we can dial: TCP over IPv4 or IPv6, not loopback, not unspecified; at most eight.</summary>
    private static List<IPEndPoint> Targets(IReadOnlyList<byte[]> addrs) =>
        [.. addrs.Select(ToEndPoint).OfType<IPEndPoint>()
            .Where(e => !IPAddress.IsLoopback(e.Address) && !e.Address.Equals(IPAddress.Any) && !e.Address.Equals(IPAddress.IPv6Any) && e.Port != 0)
            .Distinct().Take(8)];

    private static IPEndPoint? ToEndPoint(byte[] raw)
    {
        if (!Multiaddr.TryFromBytes(raw, out var ma, out _) || ma.Components.Count < 2
            || ma.Components[0].Protocol is not (MultiaddrProtocol.Ip4 or MultiaddrProtocol.Ip6) || ma.Components[1].Protocol != MultiaddrProtocol.Tcp)
        {
            return null;
        }
        return new IPEndPoint(new IPAddress(ma.Components[0].Value), int.Parse(ma.Components[1].Text!, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static class RelayLogFacade
    {
        public static void Attempt(ILogger logger, Core.Identity.PeerId peer, int attempt, TimeSpan rtt, IReadOnlyList<IPEndPoint> targets) =>
            Relay.RelayLog.HolePunchAttempt(logger, peer.Text, attempt, MaxAttempts, (long)rtt.TotalMilliseconds, string.Join(", ", targets));
    }
}
