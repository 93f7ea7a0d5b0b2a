using SecureMesh.Core.Content;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// Which chunk of a swarm download to ask which peer for next: pure bookkeeping, no I/O, safe from any thread (as
/// MonoTorrent's pickers are, and tested alone the same way). The rules, in order:
/// <list type="number">
/// <item>a chunk handed back (its request failed, timed out, or its peer was dropped) is retried first, by a peer that holds it;</item>
/// <item>then rarest first: chunks held by the fewest peers of the first plan, ties in file order (sequential writes);
/// a chunk only others hold is left for them and the peer looks further;</item>
/// <item>endgame: when nothing unrequested is left for a peer, it races one other peer for a chunk still in flight
/// (at most two requests for a chunk). Outside the endgame no chunk is requested twice at once;</item>
/// <item>a dropped peer (it lied, timed out, or its session closed) gets nothing more, and the chunks it had in flight go
/// back for the others; when no live peer can serve what is missing, every peer is told to finish.</item>
/// </list>
/// </summary>
internal sealed class ChunkPicker
{
    /// <summary><see cref="Next"/>: nothing to fetch now, but a request in flight or another live peer may change that.</summary>
    public const long Wait = -1;

    /// <summary><see cref="Next"/>: this peer has nothing left to do in this download.</summary>
    public const long Finished = -2;

    private readonly Lock _gate = new();
    private readonly ChunkBitfield _done;
    private readonly List<Peer> _peers = [];
    private readonly Queue<long> _retry = new();
    private readonly Dictionary<long, int> _inFlight = [];
    private int[] _order = [];
    private int _cursor;

    /// <summary>A picker for a file of <paramref name="chunkCount"/> chunks, of which <paramref name="done"/> (a resume) are already verified.</summary>
    public ChunkPicker(long chunkCount, IEnumerable<long>? done = null)
    {
        _done = new ChunkBitfield(chunkCount);
        foreach (var index in done ?? [])
        {
            if (index >= 0 && index < chunkCount)
            {
                _done.Set(index);
            }
        }
    }

    /// <summary>One peer as the picker sees it: which chunks it holds, which it is fetching, whether it was dropped.</summary>
    public sealed class Peer
    {
        internal Peer(ChunkBitfield have) => Have = have;

        /// <summary>The chunks the peer said it holds.</summary>
        public ChunkBitfield Have { get; }

        /// <summary>True once the peer was dropped from this download.</summary>
        public bool Dropped { get; internal set; }

        internal HashSet<long> InFlight { get; } = [];
    }

    /// <summary>Chunks in the file.</summary>
    public long ChunkCount => _done.ChunkCount;

    /// <summary>Verified chunks.</summary>
    public long DoneCount
    {
        get
        {
            lock (_gate)
            {
                return _done.SetCount;
            }
        }
    }

    /// <summary>True when every chunk is verified.</summary>
    public bool IsComplete => DoneCount == ChunkCount;

    /// <summary>Peers not dropped.</summary>
    public int LivePeers
    {
        get
        {
            lock (_gate)
            {
                return _peers.Count(p => !p.Dropped);
            }
        }
    }

    /// <summary>True when chunk <paramref name="index"/> is verified.</summary>
    public bool IsDone(long index)
    {
        lock (_gate)
        {
            return _done.IsSet(index);
        }
    }

    /// <summary>
    /// Registers the first peers and plans the order: rarest first among them, ties in file order. A counting sort on
    /// how many peers hold each chunk: 4 bytes a missing chunk and one counter per possible holder count, nothing else
    /// that grows with the file (the count is at most <see cref="ChunkLayout.MaxChunkCount"/>, so an int indexes it).
    /// </summary>
    public IReadOnlyList<Peer> Plan(IReadOnlyList<ChunkBitfield> haves)
    {
        lock (_gate)
        {
            var added = haves.Select(Add).ToList();
            var count = _done.ChunkCount;
            var holders = new int[_peers.Count + 2];
            for (long i = 0; i < count; i++)
            {
                if (!_done.IsSet(i))
                {
                    holders[Holders(i) + 1]++;
                }
            }
            for (var n = 1; n < holders.Length; n++)
            {
                holders[n] += holders[n - 1];
            }
            var order = new int[holders[^1]];
            for (long i = 0; i < count; i++)
            {
                if (!_done.IsSet(i))
                {
                    order[holders[Holders(i)]++] = (int)i;
                }
            }
            _order = order;
            _cursor = 0;
            return added;
        }
    }

    /// <summary>A peer that joins after the plan: it fetches from the same order (the plan is not redone).</summary>
    public Peer Join(ChunkBitfield have)
    {
        lock (_gate)
        {
            return Add(have);
        }
    }

    private Peer Add(ChunkBitfield have)
    {
        if (have.ChunkCount != _done.ChunkCount)
        {
            throw new ArgumentException($"a map of {have.ChunkCount} chunks for a file of {_done.ChunkCount}", nameof(have));
        }
        var peer = new Peer(have);
        _peers.Add(peer);
        return peer;
    }

    private int Holders(long index)
    {
        var n = 0;
        foreach (var p in _peers)
        {
            n += p.Have.IsSet(index) ? 1 : 0;
        }
        return n;
    }

    /// <summary>
    /// The next chunk <paramref name="peer"/> should fetch (now counted in flight for it until <see cref="Release"/>),
    /// <see cref="Wait"/>, or <see cref="Finished"/>.
    /// </summary>
    public long Next(Peer peer)
    {
        lock (_gate)
        {
            if (_done.IsComplete || peer.Dropped)
            {
                return Finished;
            }
            var retries = _retry.Count;
            for (var i = 0; i < retries; i++)
            {
                var index = _retry.Dequeue();
                if (_done.IsSet(index) || _inFlight.ContainsKey(index))
                {
                    continue;
                }
                if (peer.Have.IsSet(index))
                {
                    return Take(peer, index);
                }
                _retry.Enqueue(index);
            }
            while (_cursor < _order.Length)
            {
                var index = _order[_cursor];
                if (_done.IsSet(index) || _inFlight.ContainsKey(index))
                {
                    _cursor++;
                    continue;
                }
                if (peer.Have.IsSet(index))
                {
                    _cursor++;
                    return Take(peer, index);
                }
                // Held only by others: leave it for them and look further for this peer.
                for (var scan = _cursor + 1; scan < _order.Length; scan++)
                {
                    var other = _order[scan];
                    if (!_done.IsSet(other) && !_inFlight.ContainsKey(other) && peer.Have.IsSet(other))
                    {
                        return Take(peer, other);
                    }
                }
                break;
            }
            // Endgame: nothing unrequested is left for this peer; race another peer for a chunk still in flight.
            foreach (var (index, requesters) in _inFlight)
            {
                if (requesters < 2 && !peer.InFlight.Contains(index) && peer.Have.IsSet(index))
                {
                    return Take(peer, index);
                }
            }
            if (_inFlight.Count > 0 || _retry.Count > 0)
            {
                return Wait;
            }
            // Nothing in flight anywhere and nothing this peer can fetch: wait only if some live peer could.
            foreach (var other in _peers)
            {
                if (other != peer && !other.Dropped)
                {
                    return Wait;
                }
            }
            return Finished;
        }
    }

    private long Take(Peer peer, long index)
    {
        _inFlight[index] = _inFlight.GetValueOrDefault(index) + 1;
        peer.InFlight.Add(index);
        return index;
    }

    /// <summary>
    /// Marks chunk <paramref name="index"/> verified; true the first time (the caller keeps its bytes), false when
    /// another peer's copy came first.
    /// </summary>
    public bool MarkDone(long index)
    {
        lock (_gate)
        {
            if (_done.IsSet(index))
            {
                return false;
            }
            _done.Set(index);
            return true;
        }
    }

    /// <summary>
    /// The request of <paramref name="peer"/> for <paramref name="index"/> ended; a chunk that failed and that no one
    /// else is fetching goes back for a retry. Ignored when the chunk was already handed back by <see cref="Drop"/>.
    /// </summary>
    public void Release(Peer peer, long index, bool succeeded)
    {
        lock (_gate)
        {
            if (peer.InFlight.Remove(index))
            {
                HandBack(index, succeeded);
            }
        }
    }

    /// <summary>
    /// Drops <paramref name="peer"/> from the download: it is given nothing more, and the chunks it had in flight go back
    /// to the others at once. False when it was dropped already.
    /// </summary>
    public bool Drop(Peer peer)
    {
        lock (_gate)
        {
            if (peer.Dropped)
            {
                return false;
            }
            peer.Dropped = true;
            foreach (var index in peer.InFlight)
            {
                HandBack(index, succeeded: false);
            }
            peer.InFlight.Clear();
            return true;
        }
    }

    private void HandBack(long index, bool succeeded)
    {
        var left = _inFlight.GetValueOrDefault(index) - 1;
        if (left <= 0)
        {
            _inFlight.Remove(index);
            if (!succeeded && !_done.IsSet(index))
            {
                _retry.Enqueue(index);
            }
        }
        else
        {
            _inFlight[index] = left;
        }
    }
}
