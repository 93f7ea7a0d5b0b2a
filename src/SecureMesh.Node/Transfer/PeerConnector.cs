using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// Keeps a connection to every trusted peer with a stored address: dials them at start and whenever their session is
/// gone, with exponential backoff (1 s doubling to 60 s, ±20% jitter, reset by a success) on the injected clock.
/// Simultaneous dials: the node keeps one session per peer; if both sides' dials cross and both get cut, the jittered
/// backoff makes the next attempts miss each other, and the peer with the larger Peer ID waits a moment before its
/// first dial so the two sides rarely collide at all. A peer that refused us (it blocked this node) is left alone for
/// <see cref="RefusalBackoff"/> after its last refusal (2 s doubling to an hour, kept in the trust store, so a restart
/// does not start over), until a session with it works again.
/// </summary>
public sealed class PeerConnector : IAsyncDisposable
{
    private static readonly TimeSpan MinBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(60);

    private readonly MeshNode _node;
    private readonly SecureMeshDatabase _db;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<PeerId, (long DueStamp, TimeSpan Backoff)> _state = new();
    private readonly ConcurrentDictionary<PeerId, Task> _dialing = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly HashSet<string> _connected = new(StringComparer.Ordinal);
    private Task _loop = Task.CompletedTask;

    /// <summary>A connector for <paramref name="node"/>.</summary>
    public PeerConnector(MeshNode node, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        _node = node;
        _db = node.Database;
        _time = time ?? TimeProvider.System;
        _logger = (loggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance).CreateLogger("SecureMesh.Connector");
    }

    /// <summary>Starts the background loop (checks once a second).</summary>
    public void Start() => _loop = Task.Run(LoopAsync);

    /// <summary>Dials every trusted peer with an address that has no session, in parallel; returns the number of sessions.</summary>
    public async Task<int> ConnectAllAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cts.Token, cancellationToken);
        var dials = Targets().Select(t => DialAsync(t.Peer, t.Addresses, linked.Token, awaitRunning: true));
        await Task.WhenAll(dials).ConfigureAwait(false);
        return _node.Sessions.Count;
    }

    /// <summary>
    /// How long to wait after the <paramref name="refusals"/>-th refusal in a row by a peer that blocked us: 2 s,
    /// doubling, at most an hour.
    /// </summary>
    public static TimeSpan RefusalBackoff(int refusals)
    {
        if (refusals <= 0)
        {
            return TimeSpan.Zero;
        }
        var doublings = Math.Min(refusals - 1, 20);
        return TimeSpan.FromTicks(Math.Min(MaxRefusalBackoff.Ticks, FirstRefusalBackoff.Ticks << doublings));
    }

    /// <summary>When a peer that refuses us may be dialled again (its last refusal plus <see cref="RefusalBackoff"/>); null when it does not refuse us.</summary>
    public static DateTimeOffset? NextAttemptAfterRefusal(PeerRecord peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return peer.RefusingUs && peer.RefusedAt is { } at ? at + RefusalBackoff(peer.Refusals) : null;
    }

    private static readonly TimeSpan FirstRefusalBackoff = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxRefusalBackoff = TimeSpan.FromHours(1);

    /// <summary>
    /// Issue 17: asks connected trusted peers where a peer is when none of its known addresses works (the address
    /// book's exchange); the answers are tried in turn. Null: only stored addresses are dialled.
    /// </summary>
    internal Func<PeerId, CancellationToken, Task<IReadOnlyList<string>>>? FindElsewhere { get; set; }

    /// <summary>Most stored addresses tried for one peer in one round.</summary>
    private const int MaxAddressesPerDial = 8;

    private List<(PeerId Peer, IReadOnlyList<string> Addresses)> Targets()
    {
        var list = new List<(PeerId, IReadOnlyList<string>)>();
        var now = _time.GetUtcNow();
        foreach (var peer in _db.Trust.ListPeers(PeerState.Trusted))
        {
            if (peer.PeerId.Equals(_node.PeerId) || _node.GetSession(peer.PeerId) is not null || _node.IsEnding(peer.PeerId))
            {
                // Connected, or a session that just ended is still being recorded (perhaps a refusal, which sets a backoff).
                continue;
            }
            if (NextAttemptAfterRefusal(peer) is { } next && now < next)
            {
                // It blocked us: back off instead of redialling every second or two.
                continue;
            }
            var addresses = DialOrder(peer, _db.LearnedAddresses.List(peer.PeerId), relay => _db.Trust.GetPeer(relay)?.State == PeerState.Trusted);
            // No address, or the last attempt failed: through a relay first, when one is connected (circuit relay v2).
            if ((addresses.Count == 0 || _state.ContainsKey(peer.PeerId)) && _node.CircuitAddressesFor(peer.PeerId).FirstOrDefault() is { } circuit)
            {
                addresses = [circuit, .. addresses];
            }
            if (addresses.Count > 0 || FindElsewhere is not null)
            {
                list.Add((peer.PeerId, addresses));
            }
        }
        return list;
    }

    /// <summary>
    /// Whether every trusted peer has a session, so there is nothing to dial: checked on the Peer IDs alone before the
    /// full listing (every record with its addresses, each ID parsed), which with a thousand connected peers made an idle
    /// node allocate ~5 MB a second (src/SecureMesh.Node/README.md, idle memory).
    /// </summary>
    private bool EveryTrustedPeerConnected()
    {
        var connected = _connected;
        connected.Clear();
        foreach (var session in _node.Sessions)
        {
            connected.Add(session.PeerId.Text);
        }
        var self = _node.PeerId.Text;
        foreach (var id in _db.Trust.ListPeerIds(PeerState.Trusted))
        {
            if (!connected.Contains(id) && id != self)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// The addresses to dial, the one that last worked first (typed, seen and learned alike), then typed before seen
    /// before learned, relayed ones (typed or learned) last. An address recorded without a port (where an inbound
    /// connection came from) cannot be dialled; a circuit address, typed or learned, is tried only when
    /// <paramref name="relayTrusted"/> says its relay is trusted (none when it is null): through any other relay it
    /// cannot work.
    /// </summary>
    internal static IReadOnlyList<string> DialOrder(PeerRecord peer, IReadOnlyList<LearnedAddress> learned, Func<PeerId, bool>? relayTrusted = null) =>
    [
        .. peer.Addresses.Where(a => DialAddress.TryParse(a.Address, out _, out _) || ThroughTrustedRelay(peer.PeerId, a.Address, relayTrusted))
            .Select(a => (a.Address, Worked: a.LastSeen, Rank: PeerAddressFormat.IsCircuit(a.Address) ? RelayedRank : (int)a.Source))
            .Concat(learned.Where(a => DialAddress.TryParse(a.Address, out _, out _)).Select(a => (a.Address, Worked: a.LastSuccess, Rank: 3)))
            .Concat(learned.Where(a => a.Source == "relay" && ThroughTrustedRelay(peer.PeerId, a.Address, relayTrusted))
                .Select(a => (a.Address, Worked: a.LastSuccess, Rank: RelayedRank)))
            .OrderByDescending(a => a.Worked ?? DateTimeOffset.MinValue).ThenBy(a => a.Rank)
            .Select(a => a.Address).Distinct(StringComparer.Ordinal).Take(MaxAddressesPerDial),
    ];

    private const int RelayedRank = 4;

    private static bool ThroughTrustedRelay(PeerId peer, string address, Func<PeerId, bool>? relayTrusted) =>
        relayTrusted is not null && PeerAddressFormat.RelayOf(address, peer) is { } relay && relayTrusted(relay);

    /// <summary>
    /// Dials <paramref name="peer"/>. When a dial of it is already under way (the loop's or another caller's), the loop
    /// leaves it be; <see cref="ConnectAllAsync"/> (<paramref name="awaitRunning"/>) waits for it to end and, when it
    /// ended without a session (it may have started before a trusted peer knew where the peer is now), dials again
    /// itself. Before, a <see cref="ConnectAllAsync"/> that overlapped the loop's dial returned before the session existed.
    /// </summary>
    private async Task DialAsync(PeerId peer, IReadOnlyList<string> addresses, CancellationToken cancellationToken, bool awaitRunning = false)
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        while (!_dialing.TryAdd(peer, mine.Task))
        {
            if (!awaitRunning)
            {
                return;
            }
            if (_dialing.TryGetValue(peer, out var running))
            {
                await running.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (cancellationToken.IsCancellationRequested || _node.GetSession(peer) is not null)
                {
                    return;
                }
            }
        }
        await DialOnceAsync(peer, addresses, mine, cancellationToken).ConfigureAwait(false);
    }

    private async Task DialOnceAsync(PeerId peer, IReadOnlyList<string> addresses, TaskCompletionSource done, CancellationToken cancellationToken)
    {
        try
        {
            var (connected, failure) = await TryEachAsync(peer, addresses, cancellationToken).ConfigureAwait(false);
            if (!connected && FindElsewhere is { } find && !cancellationToken.IsCancellationRequested)
            {
                // None of what we know works (a changed home IP, a new port): ask the trusted peers that are connected.
                var more = (await find(peer, cancellationToken).ConfigureAwait(false)).Except(addresses, StringComparer.Ordinal).ToList();
                (connected, var again) = await TryEachAsync(peer, more, cancellationToken).ConfigureAwait(false);
                failure = again ?? failure;
            }
            if (connected)
            {
                _state.TryRemove(peer, out _);
                return;
            }
            var backoff = _state.TryGetValue(peer, out var s) ? TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, s.Backoff.Ticks * 2)) : MinBackoff;
            var jittered = backoff * (0.8 + (Random.Shared.NextDouble() * 0.4));
            _state[peer] = (_time.GetTimestamp() + (long)(jittered.TotalSeconds * _time.TimestampFrequency), backoff);
            TransferLog.DialFailed(_logger, peer.Text, addresses.Count == 0 ? "(no address)" : string.Join(", ", addresses), failure ?? "no address known", jittered);
        }
        finally
        {
            _dialing.TryRemove(new KeyValuePair<PeerId, Task>(peer, done.Task));
            done.TrySetResult();
        }
    }

    /// <summary>Dials the addresses in turn until one gives a session; a learned address that worked is marked so.</summary>
    private async Task<(bool Connected, string? Failure)> TryEachAsync(PeerId peer, IReadOnlyList<string> addresses, CancellationToken cancellationToken)
    {
        string? failure = null;
        foreach (var address in addresses)
        {
            try
            {
                await _node.ConnectAsync(peer, address, cancellationToken).ConfigureAwait(false);
                _db.LearnedAddresses.MarkSuccess(peer, address);
                return (true, null);
            }
            catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException or System.Net.Sockets.SocketException)
            {
                failure = e.Message;
                if (cancellationToken.IsCancellationRequested || e is SecureMeshException { Kind: SecureMeshErrorKind.Unauthorized })
                {
                    break;
                }
            }
        }
        return (false, failure);
    }

    private async Task DialWithTimeoutAsync(PeerId peer, IReadOnlyList<string> addresses, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10), _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        await DialAsync(peer, addresses, linked.Token).ConfigureAwait(false);
    }

    private async Task LoopAsync()
    {
        var token = _stopping.Token;
        try
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
            using var stop = timer.StopOn(token);
            var first = true;
            do
            {
                List<(PeerId Peer, IReadOnlyList<string> Addresses)> targets;
                try
                {
                    if (!first && EveryTrustedPeerConnected())
                    {
                        continue;
                    }
                    targets = Targets();
                }
                catch (SecureMeshException)
                {
                    continue;
                }
                var now = _time.GetTimestamp();
                foreach (var (peer, addresses) in targets)
                {
                    if (first && string.CompareOrdinal(_node.PeerId.Text, peer.Text) > 0)
                    {
                        // The larger ID lets the smaller one dial first.
                        _state.TryAdd(peer, (now + (_time.TimestampFrequency / 2), TimeSpan.Zero));
                    }
                    if (_state.TryGetValue(peer, out var s) && s.DueStamp > now)
                    {
                        continue;
                    }
                    _ = DialWithTimeoutAsync(peer, addresses, token);
                }
                first = false;
            }
            while (await timer.WaitForNextTickAsync().ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Stops the loop.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stopping.Dispose();
    }
}
