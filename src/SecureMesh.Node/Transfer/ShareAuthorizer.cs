using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// Who may see what, frozen at one point in time and answered from memory: trusted peer → its groups, share path →
/// audience, content ID → the shares holding it. Built from the database only when something that decides visibility
/// changed (see <see cref="ShareAuthorizer"/>), never per request.
/// </summary>
internal sealed class AccessSnapshot
{
    private readonly Dictionary<string, int[]> _trusted;
    private readonly Dictionary<string, Audience> _shares;
    private readonly Dictionary<string, Audience>.AlternateLookup<ReadOnlySpan<char>> _sharesBySpan;
    private readonly Dictionary<string, string[]> _contentShares;

    private AccessSnapshot(Dictionary<string, int[]> trusted, Dictionary<string, Audience> shares, Dictionary<string, string[]> contentShares, long audienceStamp, long catalogStamp)
    {
        _trusted = trusted;
        _shares = shares;
        _sharesBySpan = shares.GetAlternateLookup<ReadOnlySpan<char>>();
        _contentShares = contentShares;
        AudienceStamp = audienceStamp;
        CatalogStamp = catalogStamp;
    }

    /// <summary>An audience: every trusted peer, or the trusted members of some groups plus some trusted peers.</summary>
    private sealed record Audience(bool All, int[] Groups, HashSet<string> Peers);

    public long AudienceStamp { get; }

    public long CatalogStamp { get; }

    /// <summary>Trusted peers known to the snapshot.</summary>
    public int TrustedCount => _trusted.Count;

    /// <summary>Content IDs in the catalog.</summary>
    public int ContentCount => _contentShares.Count;

    /// <summary>
    /// Builds a snapshot. <paramref name="previous"/>'s content map is kept when the catalog did not change, so a group
    /// change does not re-read the catalog.
    /// </summary>
    public static AccessSnapshot Build(AccessData data, IReadOnlyList<(string ContentId, string Path)>? catalog, AccessSnapshot? previous, long audienceStamp, long catalogStamp)
    {
        var groupIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        int IndexOf(string group)
        {
            if (!groupIndex.TryGetValue(group, out var i))
            {
                groupIndex[group] = i = groupIndex.Count;
            }
            return i;
        }

        var trusted = new Dictionary<string, int[]>(data.TrustedPeers.Count, StringComparer.Ordinal);
        foreach (var peer in data.TrustedPeers)
        {
            trusted[peer] = [];
        }
        foreach (var (group, peer) in data.Memberships)
        {
            // Only trusted peers are in the map at all: a pending or blocked member sees nothing.
            ref var groups = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(trusted, peer);
            if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref groups))
            {
                // Peers are in few groups: growing by one and keeping it sorted is cheaper than a list per peer.
                var index = IndexOf(group);
                var grown = new int[groups.Length + 1];
                var at = 0;
                while (at < groups.Length && groups[at] < index)
                {
                    grown[at] = groups[at];
                    at++;
                }
                grown[at] = index;
                Array.Copy(groups, at, grown, at + 1, groups.Length - at);
                groups = grown;
            }
        }

        var rows = new Dictionary<string, (bool All, List<int> Groups, HashSet<string> Peers)>(StringComparer.Ordinal);
        foreach (var share in data.Shares)
        {
            rows[share] = (false, [], new HashSet<string>(StringComparer.Ordinal));
        }
        foreach (var row in data.Audiences)
        {
            if (!rows.TryGetValue(row.Key, out var a))
            {
                continue;
            }
            switch (row.Kind)
            {
                case "all":
                    rows[row.Key] = (true, a.Groups, a.Peers);
                    break;
                case "group" when row.Group is not null:
                    a.Groups.Add(IndexOf(row.Group));
                    break;
                case "peer" when row.Peer is not null:
                    a.Peers.Add(row.Peer);
                    break;
            }
        }
        var shares = new Dictionary<string, Audience>(rows.Count, StringComparer.Ordinal);
        foreach (var (path, a) in rows)
        {
            var groups = a.Groups.Distinct().ToArray();
            Array.Sort(groups);
            shares[path] = new Audience(a.All, groups, a.Peers);
        }

        Dictionary<string, string[]> contentShares;
        if (catalog is null && previous is not null)
        {
            contentShares = previous._contentShares;
        }
        else
        {
            contentShares = BuildContentMap(catalog ?? [], shares);
        }
        return new AccessSnapshot(trusted, shares, contentShares, audienceStamp, catalogStamp);
    }

    private static Dictionary<string, string[]> BuildContentMap(IReadOnlyList<(string ContentId, string Path)> catalog, Dictionary<string, Audience> shares)
    {
        var lookup = shares.GetAlternateLookup<ReadOnlySpan<char>>();
        var map = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var found = new List<string>(4);
        foreach (var (contentId, path) in catalog)
        {
            found.Clear();
            // Every share the file lies under counts (shares may nest), whatever share_root the indexer recorded.
            foreach (var ancestor in Ancestors(path))
            {
                if (lookup.TryGetValue(ancestor, out var key, out _))
                {
                    found.Add(key);
                }
            }
            if (found.Count == 0)
            {
                continue;
            }
            if (map.TryGetValue(contentId, out var existing))
            {
                map[contentId] = [.. existing.Union(found, StringComparer.Ordinal)];
            }
            else
            {
                map[contentId] = [.. found];
            }
        }
        return map;
    }

    /// <summary>True when <paramref name="peer"/> may see <paramref name="contentId"/>: it is trusted, and some share holding the content has it in its audience.</summary>
    public bool CanSeeContent(string peer, string contentId)
    {
        if (!_trusted.TryGetValue(peer, out var groups) || !_contentShares.TryGetValue(contentId, out var holders))
        {
            return false;
        }
        foreach (var share in holders)
        {
            if (_shares.TryGetValue(share, out var audience) && Sees(audience, peer, groups))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>True when <paramref name="peer"/> may see the file at <paramref name="path"/>: trusted, and some share the path lies under has it in its audience.</summary>
    public bool CanSeePath(string peer, string path)
    {
        if (!_trusted.TryGetValue(peer, out var groups))
        {
            return false;
        }
        foreach (var ancestor in Ancestors(path))
        {
            if (_sharesBySpan.TryGetValue(ancestor, out var audience) && Sees(audience, peer, groups))
            {
                return true;
            }
        }
        return false;
    }

    private static bool Sees(Audience audience, string peer, int[] peerGroups)
    {
        if (audience.All || audience.Peers.Contains(peer))
        {
            return true;
        }
        foreach (var group in audience.Groups)
        {
            if (Array.BinarySearch(peerGroups, group) >= 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The path itself, then each parent folder up to the root (<c>/a/b</c>, <c>/a</c>, <c>/</c>).</summary>
    private static AncestorEnumerator Ancestors(string path) => new(path);

    private ref struct AncestorEnumerator(string path)
    {
        private ReadOnlySpan<char> _next = path;
        private bool _done = path.Length == 0;

        public ReadOnlySpan<char> Current { get; private set; }

        public readonly AncestorEnumerator GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_done)
            {
                return false;
            }
            Current = _next;
            var cut = _next.LastIndexOfAny('/', Path.DirectorySeparatorChar);
            if (cut < 0 || _next.Length == 1)
            {
                _done = true;
            }
            else
            {
                _next = cut == 0 ? _next[..1] : _next[..cut];
            }
            return true;
        }
    }
}

/// <summary>
/// Answers "may this peer see this content (or file)?" on every request from a peer, from an in-memory
/// <see cref="AccessSnapshot"/>. <see cref="Refresh"/> rebuilds it when the database's access stamps moved (triggers move
/// them on every change to trusted peers, groups, members, audiences, shares and the catalog), which the transfer engine
/// asks for every <see cref="TransferOptions.AccessPollInterval"/>, and at once after a change made through this node.
/// </summary>
public sealed class ShareAuthorizer
{
    private readonly SecureMeshDatabase _db;
    private readonly Lock _gate = new();
    private volatile AccessSnapshot? _current;
    private long _checkedChangeStamp = long.MinValue;

    /// <summary>An authorizer over <paramref name="db"/>.</summary>
    public ShareAuthorizer(SecureMeshDatabase db)
    {
        ArgumentNullException.ThrowIfNull(db);
        _db = db;
    }

    internal AccessSnapshot Current
    {
        get
        {
            var current = _current;
            if (current is null)
            {
                Refresh();
                current = _current!;
            }
            return current;
        }
    }

    /// <summary>True when <paramref name="peer"/> may see <paramref name="contentId"/> (a blocked, pending or unknown peer never may).</summary>
    public bool CanSee(PeerId peer, string contentId)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentNullException.ThrowIfNull(contentId);
        return Current.CanSeeContent(peer.Text, contentId) || (RefreshIfStale() && Current.CanSeeContent(peer.Text, contentId));
    }

    /// <summary>True when <paramref name="peer"/> may see the shared file at <paramref name="path"/>.</summary>
    public bool CanSeePath(PeerId peer, string path)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentNullException.ThrowIfNull(path);
        return Current.CanSeePath(peer.Text, path) || (RefreshIfStale() && Current.CanSeePath(peer.Text, path));
    }

    /// <summary>
    /// Before saying no, makes sure the answer is not stale: a peer trusted or content indexed a moment ago must not be
    /// refused until the next poll. Costs one <c>PRAGMA data_version</c> when nothing changed; after a change, rebuilds
    /// (a rebuild the poll is doing at the same time may have read the data before the change, so it is not relied on),
    /// and marks the stamp checked only once a snapshot that saw it is in place. True when the caller should ask the
    /// snapshot again. A "yes" never comes here: revoking is the poll's job (within
    /// <see cref="TransferOptions.AccessPollInterval"/>), and the refusals for hidden and for unknown content take this
    /// same path.
    /// </summary>
    private bool RefreshIfStale()
    {
        var stamp = _db.ChangeStamp();
        if (Interlocked.Read(ref _checkedChangeStamp) >= stamp)
        {
            return false;
        }
        Refresh();
        lock (_gate)
        {
            if (_checkedChangeStamp < stamp)
            {
                Interlocked.Exchange(ref _checkedChangeStamp, stamp);
            }
        }
        return true;
    }

    /// <summary>Rebuilds the snapshot if anything that decides visibility changed; true when it did.</summary>
    public bool Refresh()
    {
        // Stamps first: a change committed while the data is read moves them again, and the next refresh sees it.
        var (audience, catalog) = _db.Groups.AccessStamps();
        var previous = _current;
        if (previous is not null && previous.AudienceStamp == audience && previous.CatalogStamp == catalog)
        {
            return false;
        }
        // Read and built without the gate: a request refused while the poll rebuilds builds its own snapshot instead of
        // waiting (it may hold the database's lock, which the poll's reads need, as a catalog search's filter does).
        var data = _db.Groups.ReadAccessData();
        var paths = previous is null || previous.CatalogStamp != catalog ? _db.Groups.ReadCatalogPaths() : null;
        var built = AccessSnapshot.Build(data, paths, previous, audience, catalog);
        lock (_gate)
        {
            // Of two rebuilds at once, the one that read the later stamps (they only grow) stays.
            if (_current is not { } current || (audience >= current.AudienceStamp && catalog >= current.CatalogStamp))
            {
                _current = built;
            }
        }
        return true;
    }
}
