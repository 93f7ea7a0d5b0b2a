using System.Collections.Concurrent;
using System.Net;
using SecureMesh.Core.Identity;

namespace SecureMesh.Node.Discovery;

/// <summary>A peer heard by beacon.</summary>
internal sealed record DiscoveredPeer(PeerId PeerId, IPEndPoint EndPoint, DateTimeOffset FirstSeen, DateTimeOffset LastSeen);

/// <summary>
/// Peers found by LAN beacons, kept in memory only: a beacon says who and where, nothing more, so it never creates a
/// trust-store entry. Bounded; entries not heard from for <see cref="Expiry"/> are dropped.
/// </summary>
internal sealed class DiscoveredPeers
{
    private readonly ConcurrentDictionary<PeerId, DiscoveredPeer> _peers = new();
    private readonly TimeProvider _time;
    private readonly int _capacity;

    public DiscoveredPeers(TimeProvider? time = null, int capacity = 1024)
    {
        _time = time ?? TimeProvider.System;
        _capacity = capacity;
    }

    /// <summary>How long a peer stays listed without a new beacon.</summary>
    public static TimeSpan Expiry { get; } = TimeSpan.FromMinutes(2);

    public void Record(PeerId peer, IPEndPoint endPoint)
    {
        var now = _time.GetUtcNow();
        if (!_peers.ContainsKey(peer) && _peers.Count >= _capacity)
        {
            Prune(now);
            if (_peers.Count >= _capacity)
            {
                var oldest = _peers.Values.MinBy(p => p.LastSeen);
                if (oldest is not null)
                {
                    _peers.TryRemove(oldest.PeerId, out _);
                }
            }
        }
        _peers.AddOrUpdate(peer, p => new DiscoveredPeer(p, endPoint, now, now), (_, old) => old with { EndPoint = endPoint, LastSeen = now });
    }

    public IReadOnlyList<DiscoveredPeer> Snapshot()
    {
        Prune(_time.GetUtcNow());
        return [.. _peers.Values.OrderBy(p => p.PeerId.Text, StringComparer.Ordinal)];
    }

    public DiscoveredPeer? Get(PeerId peer) => _peers.GetValueOrDefault(peer);

    private void Prune(DateTimeOffset now)
    {
        foreach (var (peer, entry) in _peers)
        {
            if (now - entry.LastSeen > Expiry)
            {
                _peers.TryRemove(peer, out _);
            }
        }
    }
}
