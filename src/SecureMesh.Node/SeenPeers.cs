using System.Collections.Concurrent;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node;

/// <summary>
/// When trusted peers were last seen (and where an outbound session reached them), written in one transaction per
/// <see cref="Flush"/> (the node's poll, every 250 ms) instead of one synced commit per session on the accept path:
/// with <c>synchronous=FULL</c> that commit was the slowest step of accepting a connection, and it ran on the accept
/// loop. A crash loses at most the last poll's worth of last-seen times; trust, audit and pending records are written
/// at once as before.
/// </summary>
internal sealed class SeenPeers(SecureMeshDatabase db)
{
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<PeerId, byte> _seenBefore = new();
    private Dictionary<PeerId, SeenPeer> _pending = [];

    /// <summary>Peers waiting for the next flush.</summary>
    internal int Pending
    {
        get
        {
            lock (_gate)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>
    /// Notes a session with <paramref name="peer"/> (<paramref name="address"/>: where we reached it, or null); returns
    /// true when this is the first session ever with it (no last-seen time stored, none noted by this process).
    /// </summary>
    public bool Note(PeerId peer, string? address)
    {
        var firstEver = false;
        if (!_seenBefore.ContainsKey(peer))
        {
            // Once per peer and process: a peer seen here once is never "first" again.
            firstEver = db.Trust.GetPeer(peer)?.LastSeen is null;
            _seenBefore.TryAdd(peer, 0);
        }
        // Stamped now, not when the poll writes it (up to a poll later, more under load): where we reached a peer must not
        // look more recent than an address that worked in between (the dial order ranks addresses by when they worked).
        var now = db.Time.GetUtcNow();
        lock (_gate)
        {
            // An outbound session's address wins over a later inbound one's null (an inbound port is an ephemeral one).
            _pending[peer] = address is null && _pending.TryGetValue(peer, out var earlier) && earlier.Address is not null
                ? earlier with { At = now }
                : new SeenPeer(peer, now, address, now);
        }
        return firstEver;
    }

    /// <summary>Writes what was noted since the last flush, in one transaction.</summary>
    public void Flush()
    {
        Dictionary<PeerId, SeenPeer> batch;
        lock (_gate)
        {
            if (_pending.Count == 0)
            {
                return;
            }
            batch = _pending;
            _pending = [];
        }
        db.Trust.TouchSeen(batch.Values);
    }
}
