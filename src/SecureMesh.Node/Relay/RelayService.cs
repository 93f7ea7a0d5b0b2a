using System.Buffers;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Relay;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Relay;

/// <summary>
/// The relay's side of circuit relay v2 (the hop protocol): reservations and circuits for peers this node trusts, and
/// nothing for anyone else. A reservation lives while its holder's connection does (and until it expires); a circuit
/// joins the initiator's hop stream to a stop stream the relay opens to the target, and carries their end-to-end
/// encrypted connection, which the relay cannot read. Limits: reservations in total, circuits in total and per peer,
/// and per circuit its duration and bytes per direction (the <c>relay-*</c> settings; none by default, as both ends
/// are peers the relay trusts). Every reservation served and circuit opened is written to the audit log.
/// </summary>
internal sealed class RelayService
{
    private readonly MeshNode _node;
    private readonly SecureMeshDatabase _db;
    private readonly RelayOptions _options;
    private readonly TimeSpan _streamTimeout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Func<RelaySettings> _settings;
    private readonly Lock _gate = new();
    private readonly Dictionary<PeerId, (PeerSession Session, DateTimeOffset Expire)> _reservations = [];
    private readonly Dictionary<PeerId, int> _circuitsPerPeer = [];
    private int _circuits;

    public RelayService(MeshNode node, SecureMeshDatabase db, RelayOptions options, TimeSpan streamTimeout, TimeProvider time, ILogger logger, Func<RelaySettings> settings)
    {
        _node = node;
        _db = db;
        _options = options;
        _streamTimeout = streamTimeout;
        _time = time;
        _logger = logger;
        _settings = settings;
    }

    /// <summary>Circuits running now (for tests and status).</summary>
    public int Circuits
    {
        get
        {
            lock (_gate)
            {
                return _circuits;
            }
        }
    }

    /// <summary>Test seam: a lying relay, which hands a circuit asked for one peer to another.</summary>
    internal Func<PeerId, PeerId>? TargetForTest { get; set; }

    /// <summary>True when <paramref name="peer"/> holds a live reservation here.</summary>
    public bool HasReservation(PeerId peer) => LiveReservation(peer) is not null;

    /// <summary>Serves one hop stream: a RESERVE or a CONNECT. Refusals are answered with a status; the stream then ends.</summary>
    public async Task ServeHopAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        HopMessage request;
        using (var deadline = new CancellationTokenSource(_streamTimeout, _time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token))
        {
            try
            {
                request = await CircuitRelay.ReadHopAsync(stream, linked.Token).ConfigureAwait(false);
            }
            catch (SecureMeshException e)
            {
                RelayLog.Refused(_logger, "hop message", session.PeerId.Text, e.Message);
                await AnswerAsync(stream, RelayStatus.MalformedMessage, linked.Token).ConfigureAwait(false);
                throw;
            }
        }
        switch (request.Type)
        {
            case HopType.Reserve:
                await ReserveAsync(session, stream, cancellationToken).ConfigureAwait(false);
                break;
            case HopType.Connect when request.Peer is { } target:
                await ConnectAsync(session, stream, target.Id, cancellationToken).ConfigureAwait(false);
                break;
            default:
                RelayLog.Refused(_logger, "hop message", session.PeerId.Text, $"unexpected {request.Type}");
                await AnswerAsync(stream, request.Type == HopType.Connect ? RelayStatus.MalformedMessage : RelayStatus.UnexpectedMessage, cancellationToken).ConfigureAwait(false);
                break;
        }
    }

    private async Task ReserveAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        var peer = session.PeerId;
        var settings = _settings();
        if (Refusal(settings, peer, session.Path) is { } denied)
        {
            RelayLog.Refused(_logger, "reservation", peer.Text, denied);
            Audit("relay.refused", peer, $"reservation: {denied}");
            await AnswerAsync(stream, RelayStatus.PermissionDenied, cancellationToken).ConfigureAwait(false);
            return;
        }
        var expire = _time.GetUtcNow() + _options.ReservationTtl;
        bool renewed;
        lock (_gate)
        {
            PruneLocked();
            renewed = _reservations.ContainsKey(peer);
            if (!renewed && _reservations.Count >= _options.MaxReservations)
            {
                expire = default;
            }
            else
            {
                _reservations[peer] = (session, expire);
            }
        }
        if (expire == default)
        {
            RelayLog.Refused(_logger, "reservation", peer.Text, $"{_options.MaxReservations} reservations held already");
            await AnswerAsync(stream, RelayStatus.ReservationRefused, cancellationToken).ConfigureAwait(false);
            return;
        }
        // The addresses the peer may hand out for this relay: ours, each ending in our Peer ID (the client adds /p2p-circuit).
        var addrs = ListenAddresses.Expand(_node.LocalEndPoint)
            .Where(e => !System.Net.IPAddress.IsLoopback(e.Address) || System.Net.IPAddress.IsLoopback(_node.LocalEndPoint.Address))
            .Take(16)
            .Select(e => Core.Addressing.Multiaddr.FromEndPoint(e, _node.PeerId).ToBytes())
            .ToList();
        var answer = new HopMessage(HopType.Status)
        {
            Status = RelayStatus.Ok,
            Reservation = new RelayReservation((ulong)expire.ToUnixTimeSeconds(), addrs, null),
            Limit = Limit(settings),
        };
        await CircuitRelay.WriteAsync(stream, answer, cancellationToken).ConfigureAwait(false);
        RelayLog.ReservationServed(_logger, peer.Text, expire);
        if (!renewed)
        {
            Audit("relay.reservation", peer, $"reservation served until {expire:u}");
        }
    }

    private async Task ConnectAsync(PeerSession session, Stream stream, PeerId targetId, CancellationToken cancellationToken)
    {
        var source = session.PeerId;
        var settings = _settings();
        var denied = Refusal(settings, source, session.Path) ?? (Refusal(settings, targetId, ConnectionPath.Direct) is { } other ? "target " + other : null);
        if (denied is not null)
        {
            RelayLog.Refused(_logger, "circuit to " + targetId.Text, source.Text, denied);
            Audit("relay.refused", source, $"circuit to {targetId}: {denied}");
            await AnswerAsync(stream, RelayStatus.PermissionDenied, cancellationToken).ConfigureAwait(false);
            return;
        }
        var target = LiveReservation(TargetForTest?.Invoke(targetId) ?? targetId);
        if (target is null)
        {
            RelayLog.Refused(_logger, "circuit to " + targetId.Text, source.Text, "the target holds no reservation");
            await AnswerAsync(stream, RelayStatus.NoReservation, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (!TryEnterCircuit(source, targetId, settings.CircuitsPerPeer))
        {
            RelayLog.Refused(_logger, "circuit to " + targetId.Text, source.Text, "circuit limit reached");
            Audit("relay.refused", source, $"circuit to {targetId}: circuit limit reached");
            await AnswerAsync(stream, RelayStatus.ResourceLimitExceeded, cancellationToken).ConfigureAwait(false);
            return;
        }
        Stream? stop = null;
        try
        {
            var limit = Limit(settings);
            try
            {
                using var deadline = new CancellationTokenSource(_streamTimeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
                stop = await target.OpenStreamAsync(CircuitRelay.StopProtocolId, linked.Token).ConfigureAwait(false);
                await CircuitRelay.WriteAsync(stop, new StopMessage(StopType.Connect) { Peer = new RelayPeer(source), Limit = limit }, linked.Token).ConfigureAwait(false);
                var reply = await CircuitRelay.ReadStopAsync(stop, linked.Token).ConfigureAwait(false);
                if (reply.Type != StopType.Status || reply.Status != RelayStatus.Ok)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Network, $"the target answered {reply.Status?.ToString() ?? reply.Type.ToString()}");
                }
            }
            catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                RelayLog.Refused(_logger, "circuit to " + targetId.Text, source.Text, "the target did not take it: " + e.Message);
                await AnswerAsync(stream, RelayStatus.ConnectionFailed, cancellationToken).ConfigureAwait(false);
                return;
            }
            await CircuitRelay.WriteAsync(stream, new HopMessage(HopType.Status) { Status = RelayStatus.Ok, Limit = limit }, cancellationToken).ConfigureAwait(false);
            RelayLog.CircuitOpened(_logger, source.Text, targetId.Text);
            Audit("relay.circuit", source, $"circuit opened to {targetId}");
            var (up, down, reason) = await CircuitSplice.RunAsync(stream, stop, limit, _options.SpliceBufferSize, cancellationToken).ConfigureAwait(false);
            RelayLog.CircuitClosed(_logger, source.Text, targetId.Text, up, down, reason);
        }
        finally
        {
            ExitCircuit(source, targetId);
            if (stop is not null)
            {
                await stop.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Why <paramref name="peer"/> may not use the service; null when it may.</summary>
    private string? Refusal(RelaySettings settings, PeerId peer, ConnectionPath path)
    {
        if (settings.Mode == RelayServiceMode.Off)
        {
            return "relay service is off";
        }
        if (path == ConnectionPath.Relayed)
        {
            // No relaying over relayed connections: circuits never nest.
            return "the request came over a relayed connection";
        }
        AuthorizationDecision decision;
        try
        {
            decision = _db.Trust.Authorize(peer, System.Net.IPAddress.None);
        }
        catch (SecureMeshException e)
        {
            return "trust store unavailable: " + e.Message;
        }
        return decision == AuthorizationDecision.Trusted ? null : "not trusted by this relay";
    }

    private static RelayLimit? Limit(RelaySettings settings) =>
        settings.CircuitData == 0 && settings.CircuitDuration == 0 ? null : new RelayLimit(settings.CircuitDuration, settings.CircuitData);

    private PeerSession? LiveReservation(PeerId peer)
    {
        lock (_gate)
        {
            PruneLocked();
            return _reservations.TryGetValue(peer, out var r) ? r.Session : null;
        }
    }

    /// <summary>Drops reservations that expired or whose connection closed.</summary>
    private void PruneLocked()
    {
        var now = _time.GetUtcNow();
        List<PeerId>? gone = null;
        foreach (var (peer, r) in _reservations)
        {
            if (r.Expire <= now || r.Session.Closing.IsCancellationRequested || !ReferenceEquals(_node.GetSession(peer), r.Session))
            {
                (gone ??= []).Add(peer);
            }
        }
        foreach (var peer in gone ?? [])
        {
            _reservations.Remove(peer);
        }
    }

    private bool TryEnterCircuit(PeerId source, PeerId target, int perPeer)
    {
        lock (_gate)
        {
            if (_circuits >= _options.MaxCircuits
                || _circuitsPerPeer.GetValueOrDefault(source) >= perPeer
                || _circuitsPerPeer.GetValueOrDefault(target) >= perPeer)
            {
                return false;
            }
            _circuits++;
            _circuitsPerPeer[source] = _circuitsPerPeer.GetValueOrDefault(source) + 1;
            _circuitsPerPeer[target] = _circuitsPerPeer.GetValueOrDefault(target) + 1;
            return true;
        }
    }

    private void ExitCircuit(PeerId source, PeerId target)
    {
        lock (_gate)
        {
            _circuits--;
            foreach (var peer in new[] { source, target })
            {
                var left = _circuitsPerPeer.GetValueOrDefault(peer) - 1;
                if (left <= 0)
                {
                    _circuitsPerPeer.Remove(peer);
                }
                else
                {
                    _circuitsPerPeer[peer] = left;
                }
            }
        }
    }

    private static async Task AnswerAsync(Stream stream, RelayStatus status, CancellationToken cancellationToken)
    {
        try
        {
            await CircuitRelay.WriteAsync(stream, new HopMessage(HopType.Status) { Status = status }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private void Audit(string eventName, PeerId peer, string detail)
    {
        try
        {
            _db.Audit.Append(eventName, peer, detail);
        }
        catch (SecureMeshException e)
        {
            NodeLog.StoreFailed(_logger, e.Message);
        }
    }
}

/// <summary>Joins two streams of a circuit: bytes both ways, half-closes passed on, the circuit's limits enforced.</summary>
internal static class CircuitSplice
{
    /// <summary>Copies until both directions ended, a limit is reached or <paramref name="cancellationToken"/> fires; resets both on a limit or error.</summary>
    public static async Task<(long Up, long Down, string Reason)> RunAsync(Stream a, Stream b, RelayLimit? limit, int bufferSize, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (limit is { Duration: > 0 } timed)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(timed.Duration));
        }
        var maxBytes = limit is { Data: > 0 } capped ? (long)Math.Min(capped.Data, long.MaxValue) : long.MaxValue;
        var counts = new long[2];
        var up = PumpAsync(a, b, counts, 0, maxBytes, bufferSize, stop);
        var down = PumpAsync(b, a, counts, 1, maxBytes, bufferSize, stop);
        var reasons = await Task.WhenAll(up, down).ConfigureAwait(false);
        var reason = reasons.FirstOrDefault(r => r is not null)
            ?? (limit is { Duration: > 0 } && stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested ? "duration limit reached" : "both sides closed");
        if (reasons.Any(r => r is not null) || stop.IsCancellationRequested)
        {
            Reset(a);
            Reset(b);
        }
        return (counts[0], counts[1], reason);
    }

    private static async Task<string?> PumpAsync(Stream from, Stream to, long[] counts, int index, long maxBytes, int bufferSize, CancellationTokenSource stop)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer.AsMemory(0, bufferSize), stop.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    if (to is YamuxStream yamux)
                    {
                        await yamux.CloseWriteAsync(stop.Token).ConfigureAwait(false);
                    }
                    return null;
                }
                if (Interlocked.Add(ref counts[index], n) > maxBytes)
                {
                    await stop.CancelAsync().ConfigureAwait(false);
                    return "data limit reached";
                }
                await to.WriteAsync(buffer.AsMemory(0, n), stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            await stop.CancelAsync().ConfigureAwait(false);
            return "a side broke off: " + e.Message;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void Reset(Stream stream)
    {
        if (stream is YamuxStream yamux)
        {
            yamux.Reset();
        }
    }
}
