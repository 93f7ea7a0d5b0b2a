using System.Globalization;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>A named group of peers; a peer may be in several.</summary>
/// <param name="Name">The group's name.</param>
/// <param name="Members">Its members, ordered by Peer ID.</param>
/// <param name="Created">When it was created.</param>
public sealed record GroupRecord(string Name, IReadOnlyList<PeerId> Members, DateTimeOffset Created);

/// <summary>
/// Who may see a share: every trusted peer (<see cref="All"/>), or the trusted members of some groups and some
/// trusted peers named one by one. Blocked and pending peers are never in an audience, whatever it names.
/// </summary>
public sealed record ShareAudience
{
    /// <summary>The audience of a share nobody set one for: every trusted peer, as before audiences existed.</summary>
    public static readonly ShareAudience Everyone = new(true, [], []);

    private ShareAudience(bool all, IReadOnlyList<string> groups, IReadOnlyList<PeerId> peers)
    {
        All = all;
        Groups = groups;
        Peers = peers;
    }

    /// <summary>Every trusted peer.</summary>
    public bool All { get; }

    /// <summary>Groups whose trusted members may see the share (sorted, distinct).</summary>
    public IReadOnlyList<string> Groups { get; }

    /// <summary>Peers that may see the share if trusted (sorted, distinct).</summary>
    public IReadOnlyList<PeerId> Peers { get; }

    /// <summary>True when nobody can see the share (every group and peer it named was deleted).</summary>
    public bool IsEmpty => !All && Groups.Count == 0 && Peers.Count == 0;

    /// <summary>An audience of groups and peers.</summary>
    public static ShareAudience Of(IEnumerable<string> groups, IEnumerable<PeerId> peers) => new(false,
        [.. groups.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)],
        [.. peers.DistinctBy(p => p.Text).OrderBy(p => p.Text, StringComparer.Ordinal)]);

    /// <summary>
    /// Parses the <c>--with</c> text: <c>all</c>, or a comma-separated list of group names and Peer IDs. Only the
    /// shape is checked here; that the groups and peers exist is checked when the audience is stored.
    /// </summary>
    public static ShareAudience Parse(string? text)
    {
        var items = (text ?? string.Empty).Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (items.Length == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "an audience is needed: 'all', a group name or Peer IDs, separated by commas");
        }
        if (items.Any(i => string.Equals(i, "all", StringComparison.OrdinalIgnoreCase)))
        {
            return items.Length == 1
                ? Everyone
                : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "'all' already means every trusted peer: give it alone");
        }
        var groups = new List<string>();
        var peers = new List<PeerId>();
        foreach (var item in items)
        {
            if (PeerId.TryParse(item, out var peer, out _))
            {
                peers.Add(peer);
            }
            else if (GroupStore.IsValidName(item))
            {
                groups.Add(item);
            }
            else
            {
                var shown = item.Length > 60 ? item[..60] + "…" : item;
                throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                    $"'{shown}' is neither a Peer ID nor a group name (letters, digits, '.', '_' or '-', at most {GroupStore.MaxNameLength})");
            }
        }
        return Of(groups, peers);
    }

    /// <summary><c>all</c>, <c>nobody</c>, or the groups then the Peer IDs, comma-separated (what <see cref="Parse"/> reads).</summary>
    public override string ToString() =>
        All ? "all" : IsEmpty ? "nobody" : string.Join(',', Groups.Concat(Peers.Select(p => p.Text)));

    /// <summary>Same audience.</summary>
    public bool Equals(ShareAudience? other) => other is not null && ToString() == other.ToString();

    /// <summary>Hash of <see cref="ToString"/>.</summary>
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(ToString());
}

/// <summary>One membership or audience row as the node's access snapshot reads it.</summary>
public readonly record struct AccessRow(string Key, string Kind, string? Group, string? Peer);

/// <summary>Everything that decides who sees what, read in one transaction.</summary>
/// <param name="TrustedPeers">Peer IDs of the trusted peers.</param>
/// <param name="Memberships">(group, peer) for every member.</param>
/// <param name="Audiences">(share path, kind, group, peer) for every audience entry.</param>
/// <param name="Shares">Every shared path.</param>
public sealed record AccessData(
    IReadOnlyList<string> TrustedPeers,
    IReadOnlyList<(string Group, string Peer)> Memberships,
    IReadOnlyList<AccessRow> Audiences,
    IReadOnlyList<string> Shares);

/// <summary>
/// Peer groups and share audiences. Every change commits with its audit entry; on any error nothing changes.
/// A group that is some share's audience cannot be deleted (change the share's audience first), so deleting a group
/// never silently changes who sees what.
/// </summary>
public sealed class GroupStore
{
    /// <summary>Longest group name.</summary>
    public const int MaxNameLength = 64;

    private readonly SecureMeshDatabase _database;

    internal GroupStore(SecureMeshDatabase database) => _database = database;

    /// <summary>A group name: 1 to <see cref="MaxNameLength"/> ASCII letters, digits, '.', '_' or '-'; not <c>all</c> or <c>nobody</c>.</summary>
    public static bool IsValidName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxNameLength
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-')
        && !string.Equals(name, "all", StringComparison.OrdinalIgnoreCase)
        && !string.Equals(name, "nobody", StringComparison.OrdinalIgnoreCase)
        && !PeerId.TryParse(name, out _, out _);

    private static string CheckName(string? name)
    {
        var trimmed = name?.Trim();
        return IsValidName(trimmed)
            ? trimmed!
            : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"invalid group name: use 1 to {MaxNameLength} letters, digits, '.', '_' or '-' (not 'all', 'nobody' or a Peer ID)");
    }

    /// <summary>Every group with its members, ordered by name.</summary>
    public IReadOnlyList<GroupRecord> List() => _database.Read(connection =>
    {
        var members = new Dictionary<string, List<PeerId>>(StringComparer.Ordinal);
        using (var command = SecureMeshDatabase.Command(connection, "SELECT group_name, peer_id FROM peer_group_members ORDER BY group_name, peer_id"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                if (PeerId.TryParse(reader.GetString(1), out var peer, out _))
                {
                    var name = reader.GetString(0);
                    if (!members.TryGetValue(name, out var list))
                    {
                        members[name] = list = [];
                    }
                    list.Add(peer);
                }
            }
        }
        var groups = new List<GroupRecord>();
        using (var command = SecureMeshDatabase.Command(connection, "SELECT name, created FROM peer_groups ORDER BY name"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                var name = reader.GetString(0);
                groups.Add(new GroupRecord(name, members.TryGetValue(name, out var list) ? list : [], StateNames.FromMs(reader.GetInt64(1))));
            }
        }
        return groups;
    });

    /// <summary>One group, or null.</summary>
    public GroupRecord? Get(string name) => List().FirstOrDefault(g => string.Equals(g.Name, name?.Trim(), StringComparison.Ordinal));

    /// <summary>Creates an empty group. Invalid name: InvalidInput; exists: Conflict.</summary>
    public GroupRecord Create(string name)
    {
        name = CheckName(name);
        _database.Write(tx =>
        {
            if (GroupExists(tx, name))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"group {name} already exists");
            }
            SecureMeshDatabase.Execute(tx, "INSERT INTO peer_groups (name, created) VALUES ($name, $now)", ("$name", name), ("$now", _database.NowMs()));
            _database.Audit.AppendCore(tx, "group.created", null, $"group={name}");
            return 0;
        });
        return Get(name)!;
    }

    /// <summary>Deletes a group and its memberships. Unknown: NotFound; the audience of a share: Conflict.</summary>
    public void Delete(string name)
    {
        name = CheckName(name);
        _database.Write(tx =>
        {
            RequireGroup(tx, name);
            var used = ReadStrings(tx, "SELECT DISTINCT share_path FROM share_audience WHERE group_name = $name ORDER BY share_path", ("$name", name));
            if (used.Count > 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict,
                    $"group {name} is who sees {string.Join(", ", used.Take(3))}{(used.Count > 3 ? $" and {used.Count - 3} more" : string.Empty)}; change that with 'share set PATH --with …' first");
            }
            var members = ReadStrings(tx, "SELECT peer_id FROM peer_group_members WHERE group_name = $name", ("$name", name));
            SecureMeshDatabase.Execute(tx, "DELETE FROM peer_groups WHERE name = $name", ("$name", name));
            _database.Audit.AppendCore(tx, "group.deleted", null, $"group={name} members={members.Count.ToString(CultureInfo.InvariantCulture)}");
            return 0;
        });
    }

    /// <summary>Adds known peers (any state) to a group; returns how many were not members yet. Unknown group or peer: NotFound, nothing changes.</summary>
    public int AddMembers(string name, IEnumerable<PeerId> peers)
    {
        name = CheckName(name);
        var list = Distinct(peers);
        return _database.Write(tx =>
        {
            RequireGroup(tx, name);
            var added = 0;
            foreach (var peer in list)
            {
                if (SecureMeshDatabase.Scalar(tx, "SELECT 1 FROM peers WHERE peer_id = $id", ("$id", peer.Text)) is null)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"peer {peer.Text} is not known; add it with 'securemesh peers add' first");
                }
                if (SecureMeshDatabase.Execute(tx, "INSERT OR IGNORE INTO peer_group_members (group_name, peer_id, added) VALUES ($name, $id, $now)",
                        ("$name", name), ("$id", peer.Text), ("$now", _database.NowMs())) == 1)
                {
                    _database.Audit.AppendCore(tx, "group.member_added", peer.Text, $"group={name}");
                    added++;
                }
            }
            return added;
        });
    }

    /// <summary>Removes peers from a group; returns how many were members. Unknown group: NotFound, nothing changes.</summary>
    public int RemoveMembers(string name, IEnumerable<PeerId> peers)
    {
        name = CheckName(name);
        var list = Distinct(peers);
        return _database.Write(tx =>
        {
            RequireGroup(tx, name);
            var removed = 0;
            foreach (var peer in list)
            {
                if (SecureMeshDatabase.Execute(tx, "DELETE FROM peer_group_members WHERE group_name = $name AND peer_id = $id", ("$name", name), ("$id", peer.Text)) == 1)
                {
                    _database.Audit.AppendCore(tx, "group.member_removed", peer.Text, $"group={name}");
                    removed++;
                }
            }
            return removed;
        });
    }

    /// <summary>The audience of a shared path. Not shared: NotFound.</summary>
    public ShareAudience GetAudience(string sharePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(sharePath);
        return ListAudiences().TryGetValue(sharePath, out var audience)
            ? audience
            : throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{sharePath} is not shared ('securemesh share list' shows what is)");
    }

    /// <summary>Every shared path's audience.</summary>
    public IReadOnlyDictionary<string, ShareAudience> ListAudiences() => _database.Read(connection =>
    {
        var rows = new List<AccessRow>();
        var shares = new List<string>();
        ReadAudienceRows(connection, rows, shares);
        return Fold(rows, shares);
    });

    /// <summary>
    /// Sets who sees a shared path (replacing what it was), audited as <c>share.audience</c>. Every group must exist and
    /// every peer be known (in any state: a peer that is not trusted still sees nothing). Not shared, unknown group or
    /// peer: NotFound, and nothing changes. Returns false when the audience already was this.
    /// </summary>
    public bool SetAudience(string sharePath, ShareAudience audience)
    {
        ArgumentException.ThrowIfNullOrEmpty(sharePath);
        ArgumentNullException.ThrowIfNull(audience);
        if (audience.IsEmpty)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "an audience is needed: 'all', a group name or Peer IDs");
        }
        return _database.Write(tx =>
        {
            if (SecureMeshDatabase.Scalar(tx, "SELECT 1 FROM shares WHERE path = $p", ("$p", sharePath)) is null)
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{sharePath} is not shared ('securemesh share list' shows what is)");
            }
            foreach (var group in audience.Groups)
            {
                if (!GroupExists(tx, group))
                {
                    throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no group {group}; create it with 'securemesh groups create {group}'");
                }
            }
            foreach (var peer in audience.Peers)
            {
                if (SecureMeshDatabase.Scalar(tx, "SELECT 1 FROM peers WHERE peer_id = $id", ("$id", peer.Text)) is null)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"peer {peer.Text} is not known; add it with 'securemesh peers add' first");
                }
            }
            var before = ReadAudience(tx, sharePath);
            if (before.Equals(audience))
            {
                return false;
            }
            SecureMeshDatabase.Execute(tx, "DELETE FROM share_audience WHERE share_path = $p", ("$p", sharePath));
            if (audience.All)
            {
                SecureMeshDatabase.Execute(tx, "INSERT INTO share_audience (share_path, kind) VALUES ($p, 'all')", ("$p", sharePath));
            }
            foreach (var group in audience.Groups)
            {
                SecureMeshDatabase.Execute(tx, "INSERT INTO share_audience (share_path, kind, group_name) VALUES ($p, 'group', $g)", ("$p", sharePath), ("$g", group));
            }
            foreach (var peer in audience.Peers)
            {
                SecureMeshDatabase.Execute(tx, "INSERT INTO share_audience (share_path, kind, peer_id) VALUES ($p, 'peer', $id)", ("$p", sharePath), ("$id", peer.Text));
            }
            _database.Audit.AppendCore(tx, "share.audience", null, $"path={sharePath} from={before} to={audience}");
            return true;
        });
    }

    /// <summary>Throws what <see cref="SetAudience"/> would for an audience naming an unknown group or peer; changes nothing.</summary>
    public void CheckAudience(ShareAudience audience)
    {
        ArgumentNullException.ThrowIfNull(audience);
        if (audience.IsEmpty)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "an audience is needed: 'all', a group name or Peer IDs");
        }
        _database.Read(connection =>
        {
            foreach (var group in audience.Groups)
            {
                using var command = SecureMeshDatabase.Command(connection, "SELECT 1 FROM peer_groups WHERE name = $name", ("$name", group));
                if (command.ExecuteScalar() is null)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no group {group}; create it with 'securemesh groups create {group}'");
                }
            }
            foreach (var peer in audience.Peers)
            {
                using var command = SecureMeshDatabase.Command(connection, "SELECT 1 FROM peers WHERE peer_id = $id", ("$id", peer.Text));
                if (command.ExecuteScalar() is null)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"peer {peer.Text} is not known; add it with 'securemesh peers add' first");
                }
            }
            return 0;
        });
    }

    /// <summary>Two counters that move with every change to who sees what (audience) and to what is shared where (catalog).</summary>
    public (long Audience, long Catalog) AccessStamps() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT name, value FROM access_stamps");
        using var reader = command.ExecuteReader();
        long audience = 0, catalog = 0;
        while (reader.Read())
        {
            switch (reader.GetString(0))
            {
                case "audience":
                    audience = reader.GetInt64(1);
                    break;
                case "catalog":
                    catalog = reader.GetInt64(1);
                    break;
            }
        }
        return (audience, catalog);
    });

    /// <summary>Trusted peers, memberships, audiences and shares, read at one point in time (for the node's snapshot).</summary>
    public AccessData ReadAccessData() => _database.Read(connection =>
    {
        using var transaction = connection.BeginTransaction(deferred: true);
        var trusted = new List<string>();
        using (var command = SecureMeshDatabase.Command(transaction, "SELECT peer_id FROM peers WHERE state = 'trusted'"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                trusted.Add(reader.GetString(0));
            }
        }
        var members = new List<(string, string)>();
        using (var command = SecureMeshDatabase.Command(transaction, "SELECT group_name, peer_id FROM peer_group_members"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                members.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        var rows = new List<AccessRow>();
        var shares = new List<string>();
        ReadAudienceRows(connection, rows, shares, transaction);
        transaction.Commit();
        return new AccessData(trusted, members, rows, shares);
    });

    /// <summary>(content ID, path) of every catalog entry, for the node's content-to-share map.</summary>
    public IReadOnlyList<(string ContentId, string Path)> ReadCatalogPaths() => _database.Read(connection =>
    {
        var list = new List<(string, string)>();
        using var command = SecureMeshDatabase.Command(connection, "SELECT content_id, path FROM catalog");
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            list.Add((reader.GetString(0), reader.GetString(1)));
        }
        return list;
    });

    private static void ReadAudienceRows(SqliteConnection connection, List<AccessRow> rows, List<string> shares, SqliteTransaction? transaction = null)
    {
        using (var command = transaction is null
                   ? SecureMeshDatabase.Command(connection, "SELECT share_path, kind, group_name, peer_id FROM share_audience")
                   : SecureMeshDatabase.Command(transaction, "SELECT share_path, kind, group_name, peer_id FROM share_audience"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                rows.Add(new AccessRow(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
            }
        }
        using (var command = transaction is null
                   ? SecureMeshDatabase.Command(connection, "SELECT path FROM shares")
                   : SecureMeshDatabase.Command(transaction, "SELECT path FROM shares"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                shares.Add(reader.GetString(0));
            }
        }
    }

    private static Dictionary<string, ShareAudience> Fold(List<AccessRow> rows, List<string> shares)
    {
        var byShare = rows.GroupBy(r => r.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var result = new Dictionary<string, ShareAudience>(StringComparer.Ordinal);
        foreach (var share in shares)
        {
            result[share] = FoldOne(byShare.TryGetValue(share, out var mine) ? mine : []);
        }
        return result;
    }

    private static ShareAudience FoldOne(List<AccessRow> rows)
    {
        if (rows.Any(r => r.Kind == "all"))
        {
            return ShareAudience.Everyone;
        }
        var peers = new List<PeerId>();
        foreach (var r in rows.Where(r => r.Kind == "peer" && r.Peer is not null))
        {
            if (PeerId.TryParse(r.Peer, out var peer, out _))
            {
                peers.Add(peer);
            }
        }
        return ShareAudience.Of(rows.Where(r => r.Kind == "group" && r.Group is not null).Select(r => r.Group!), peers);
    }

    private static ShareAudience ReadAudience(SqliteTransaction tx, string sharePath)
    {
        var rows = new List<AccessRow>();
        using var command = SecureMeshDatabase.Command(tx, "SELECT share_path, kind, group_name, peer_id FROM share_audience WHERE share_path = $p", ("$p", sharePath));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(new AccessRow(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
        }
        return FoldOne(rows);
    }

    private static List<PeerId> Distinct(IEnumerable<PeerId> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var list = peers.DistinctBy(p => p.Text).ToList();
        return list.Count > 0
            ? list
            : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "give at least one Peer ID");
    }

    private static bool GroupExists(SqliteTransaction tx, string name) =>
        SecureMeshDatabase.Scalar(tx, "SELECT 1 FROM peer_groups WHERE name = $name", ("$name", name)) is not null;

    private static void RequireGroup(SqliteTransaction tx, string name)
    {
        if (!GroupExists(tx, name))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no group {name} ('securemesh groups list' shows them)");
        }
    }

    private static List<string> ReadStrings(SqliteTransaction tx, string sql, params (string, object?)[] parameters)
    {
        using var command = SecureMeshDatabase.Command(tx, sql, parameters);
        using var reader = command.ExecuteReader();
        var list = new List<string>();
        while (reader.Read())
        {
            list.Add(reader.GetString(0));
        }
        return list;
    }
}
