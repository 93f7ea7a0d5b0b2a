using System.Net;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>
/// Peers (trusted, pending, blocked), the address and content blocklists, and the authorization fast path.
/// Every change commits together with its audit entry; on any error nothing changes.
/// </summary>
public sealed class TrustStore
{
    /// <summary>Longest accepted peer name.</summary>
    public const int MaxNameLength = 64;

    /// <summary>Longest accepted block reason.</summary>
    public const int MaxReasonLength = 512;

    /// <summary>
    /// How many strangers <see cref="RecordPending(PeerId, string)"/> keeps before forgetting the least recently seen.
    /// Each keeps at most <see cref="MaxSeenAddresses"/> seen addresses, so strangers hold at most 5 rows each.
    /// </summary>
    public const int DefaultMaxPendingPeers = 10_000;

    private readonly SecureMeshDatabase _database;
    private SqliteCommand? _peerState;
    private SqliteCommand? _contentBlocked;
    private CidrRange[] _blockedRanges = [];
    private long _rangesStamp = long.MinValue;
    private long _rangesLocalCommits = -1;
    private long _rangesPolledAt;

    /// <summary>How often the address-range snapshot asks SQLite whether another process changed the file.</summary>
    internal static readonly TimeSpan RangePollInterval = TimeSpan.FromMilliseconds(250);

    internal TrustStore(SecureMeshDatabase database) => _database = database;

    /// <summary>Cap on handshake-recorded pending peers, so strangers minting Peer IDs cannot grow the file without bound.</summary>
    internal int MaxPendingPeers { get; set; } = DefaultMaxPendingPeers;

    /// <summary>Adds a peer the user names; a peer already known in any state is a Conflict.</summary>
    public PeerRecord AddPeer(PeerId peer, string? name = null, IEnumerable<string>? addresses = null, bool trusted = false)
    {
        ArgumentNullException.ThrowIfNull(peer);
        name = CheckName(name);
        var normalized = (addresses ?? []).Select(a => PeerAddressFormat.Normalize(a, peer)).Distinct(StringComparer.Ordinal).ToList();
        _database.Write(tx =>
        {
            var existing = StateOf(tx, peer);
            if (existing is not null)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict,
                    $"peer {peer.Text} is already known ({StateNames.ToDb(existing.Value)}); use trust, block or rename instead");
            }
            var now = _database.NowMs();
            var state = trusted ? PeerState.Trusted : PeerState.Pending;
            InsertPeer(tx, peer, name, state, null, now, firstSeen: null);
            foreach (var address in normalized)
            {
                UpsertAddress(tx, peer, address, AddressSource.User, lastSeen: null);
            }
            _database.Audit.AppendCore(tx, "peer.added", peer.Text,
                $"state={StateNames.ToDb(state)} name={name ?? "-"} addresses={(normalized.Count == 0 ? "-" : string.Join(',', normalized))}");
            return 0;
        });
        return GetPeer(peer)!;
    }

    /// <summary>Marks a known peer trusted (also lifting a block); false when it already was. Unknown peer: NotFound.</summary>
    public bool Trust(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Write(tx =>
        {
            var state = RequireState(tx, peer);
            if (state == PeerState.Trusted)
            {
                return false;
            }
            SetState(tx, peer, PeerState.Trusted, null);
            // Trusting again is a fresh start: earlier bad chunks no longer count towards a ban.
            SecureMeshDatabase.Execute(tx, "DELETE FROM peer_strikes WHERE peer_id = $id", ("$id", peer.Text));
            _database.Audit.AppendCore(tx, "peer.trusted", peer.Text, $"from={StateNames.ToDb(state)}");
            return true;
        });
    }

    /// <summary>Blocks a peer; a peer never seen is recorded as blocked so it is refused from its first contact. False when already blocked.</summary>
    public bool Block(PeerId peer, string? reason = null)
    {
        ArgumentNullException.ThrowIfNull(peer);
        reason = CheckReason(reason);
        return _database.Write(tx =>
        {
            var state = StateOf(tx, peer);
            if (state == PeerState.Blocked)
            {
                return false;
            }
            if (state is null)
            {
                InsertPeer(tx, peer, null, PeerState.Blocked, reason, _database.NowMs(), firstSeen: null);
            }
            else
            {
                SetState(tx, peer, PeerState.Blocked, reason);
            }
            _database.Audit.AppendCore(tx, "peer.blocked", peer.Text, $"from={(state is null ? "unknown" : StateNames.ToDb(state.Value))} reason={reason ?? "-"}");
            return true;
        });
    }

    /// <summary>
    /// Counts one more chunk from <paramref name="peer"/> that failed verification and returns the new count. Stored, so
    /// a lying peer is banned after the same number of lies however often the node restarts; cleared by <see cref="Trust"/>
    /// (the user's fresh decision). Not audited here: the caller audits each rejected chunk with its evidence.
    /// </summary>
    public int AddStrike(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Write(tx =>
        {
            SecureMeshDatabase.Execute(tx,
                """
                INSERT INTO peer_strikes (peer_id, failures, updated) VALUES ($id, 1, $now)
                ON CONFLICT (peer_id) DO UPDATE SET failures = failures + 1, updated = excluded.updated
                """,
                ("$id", peer.Text), ("$now", _database.NowMs()));
            return Convert.ToInt32(SecureMeshDatabase.Scalar(tx, "SELECT failures FROM peer_strikes WHERE peer_id = $id", ("$id", peer.Text)),
                System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    /// <summary>How many chunks from <paramref name="peer"/> failed verification since it was last trusted.</summary>
    public int Strikes(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection, "SELECT failures FROM peer_strikes WHERE peer_id = $id", ("$id", peer.Text));
            return command.ExecuteScalar() is long n ? (int)n : 0;
        });
    }

    /// <summary>Lifts a block; the peer becomes pending (trust it again explicitly). False when not blocked. Unknown peer: NotFound.</summary>
    public bool Unblock(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Write(tx =>
        {
            if (RequireState(tx, peer) != PeerState.Blocked)
            {
                return false;
            }
            SetState(tx, peer, PeerState.Pending, null);
            _database.Audit.AppendCore(tx, "peer.unblocked", peer.Text, "to=pending");
            return true;
        });
    }

    /// <summary>Sets or clears (null or empty) a peer's name. Unknown peer: NotFound.</summary>
    public void Rename(PeerId peer, string? name)
    {
        ArgumentNullException.ThrowIfNull(peer);
        name = CheckName(name);
        _database.Write(tx =>
        {
            RequireState(tx, peer);
            SecureMeshDatabase.Execute(tx, "UPDATE peers SET name = $name, updated = $now WHERE peer_id = $id",
                ("$name", name), ("$now", _database.NowMs()), ("$id", peer.Text));
            _database.Audit.AppendCore(tx, "peer.renamed", peer.Text, $"name={name ?? "-"}");
            return 0;
        });
    }

    /// <summary>Forgets a peer and its addresses. Unknown peer: NotFound.</summary>
    public void Remove(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        _database.Write(tx =>
        {
            var state = RequireState(tx, peer);
            SecureMeshDatabase.Execute(tx, "DELETE FROM peers WHERE peer_id = $id", ("$id", peer.Text));
            _database.Audit.AppendCore(tx, "peer.removed", peer.Text, $"was={StateNames.ToDb(state)}");
            return 0;
        });
    }

    /// <summary>Adds an address to a known peer; false when it is already listed. Unknown peer: NotFound.</summary>
    public bool AddAddress(PeerId peer, string address, AddressSource source = AddressSource.User)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var normalized = PeerAddressFormat.Normalize(address, peer);
        return _database.Write(tx =>
        {
            RequireState(tx, peer);
            var exists = SecureMeshDatabase.Scalar(tx, "SELECT 1 FROM peer_addresses WHERE peer_id = $id AND address = $address",
                ("$id", peer.Text), ("$address", normalized)) is not null;
            if (exists)
            {
                return false;
            }
            UpsertAddress(tx, peer, normalized, source, null);
            _database.Audit.AppendCore(tx, "peer.address_added", peer.Text, $"address={normalized} source={StateNames.ToDb(source)}");
            return true;
        });
    }

    /// <summary>
    /// Records an unknown peer that completed a handshake as pending, or for a known peer only updates last-seen and the
    /// address. Never changes a trusted or blocked peer's state. Audited (<c>peer.pending</c>) only when first recorded.
    /// Past <see cref="DefaultMaxPendingPeers"/> strangers, the least recently seen one that the user never named or gave
    /// an address is forgotten (named in the same audit entry). The node should still rate-limit calls per remote address.
    /// </summary>
    public PeerState RecordPending(PeerId peer, IPEndPoint remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        // The IP only: the source port of an inbound connection is ephemeral, useless to dial and different every
        // time, so keeping it made a stranger's address list grow with every handshake.
        return RecordPendingCore(peer, PeerAddressFormat.HostOnly(remote.Address));
    }

    /// <summary>As <see cref="RecordPending(PeerId, IPEndPoint)"/> with a <c>host:port</c> address.</summary>
    public PeerState RecordPending(PeerId peer, string address) => RecordPendingCore(peer, PeerAddressFormat.Normalize(address));

    /// <summary>Most addresses seen at a peer that are kept (the most recent); typed-in and discovered ones are not counted.</summary>
    public const int MaxSeenAddresses = 4;

    private PeerState RecordPendingCore(PeerId peer, string normalized)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Write(tx =>
        {
            var now = _database.NowMs();
            var state = StateOf(tx, peer);
            if (state is null)
            {
                var evicted = EvictStrangerIfFull(tx);
                InsertPeer(tx, peer, null, PeerState.Pending, null, now, firstSeen: now);
                UpsertAddress(tx, peer, normalized, AddressSource.Seen, now);
                TrimSeen(tx, peer);
                _database.Audit.AppendCore(tx, "peer.pending", peer.Text,
                    evicted is null ? $"address={normalized}" : $"address={normalized} evicted={evicted}");
                return PeerState.Pending;
            }
            Touch(tx, peer, now);
            UpsertAddress(tx, peer, normalized, AddressSource.Seen, now);
            TrimSeen(tx, peer);
            return state.Value;
        });
    }

    /// <summary>Updates a known peer's last-seen time (and the address it was seen at, if given); false for an unknown peer. Not audited.</summary>
    public bool TouchSeen(PeerId peer, string? address = null)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return TouchSeen([new SeenPeer(peer, _database.Time.GetUtcNow(), address)]) == 1;
    }

    /// <summary>
    /// Last-seen times (and addresses) noted earlier and written now, in one transaction, each stamped with the time it
    /// was seen rather than the time of the write: a batch written a poll later must not make an address look more
    /// recent than one that worked in between. Unknown peers are skipped. Returns how many were known.
    /// </summary>
    public int TouchSeen(IReadOnlyCollection<SeenPeer> seen)
    {
        ArgumentNullException.ThrowIfNull(seen);
        if (seen.Count == 0)
        {
            return 0;
        }
        var normalized = seen.Select(s => (s.Peer, At: s.At.ToUnixTimeMilliseconds(), Address: s.Address is null ? null : PeerAddressFormat.Normalize(s.Address),
            AddressAt: (s.AddressAt ?? s.At).ToUnixTimeMilliseconds())).ToList();
        return _database.Write(tx =>
        {
            var known = 0;
            foreach (var (peer, at, address, addressAt) in normalized)
            {
                if (!Touch(tx, peer, at))
                {
                    continue;
                }
                known++;
                if (address is not null)
                {
                    UpsertAddress(tx, peer, address, AddressSource.Seen, addressAt);
                    TrimSeen(tx, peer);
                }
            }
            return known;
        });
    }

    /// <summary>
    /// Records that <paramref name="peer"/>'s node refused this one after the handshake (it has blocked us); returns how
    /// many refusals in a row there have been. Audited (<c>peer.refused_us</c>) the first time only, so a peer that keeps
    /// refusing does not fill the log. An unknown peer is ignored (returns 0).
    /// </summary>
    public int RecordRefusal(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Write(tx =>
        {
            var now = _database.NowMs();
            if (SecureMeshDatabase.Execute(tx, "UPDATE peers SET refused_at = $now, refusals = refusals + 1 WHERE peer_id = $id AND refusals < 1000000",
                    ("$now", now), ("$id", peer.Text)) == 0)
            {
                return 0;
            }
            var count = Convert.ToInt32(SecureMeshDatabase.Scalar(tx, "SELECT refusals FROM peers WHERE peer_id = $id", ("$id", peer.Text)), System.Globalization.CultureInfo.InvariantCulture);
            if (count == 1)
            {
                _database.Audit.AppendCore(tx, "peer.refused_us", peer.Text, "the peer's node refused this one after the handshake");
            }
            return count;
        });
    }

    /// <summary>Forgets a refusal once a session with <paramref name="peer"/> works again; false when there was none.</summary>
    public bool ClearRefusal(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Write(tx =>
        {
            var cleared = SecureMeshDatabase.Execute(tx, "UPDATE peers SET refused_at = NULL, refusals = 0 WHERE peer_id = $id AND refusals > 0", ("$id", peer.Text)) > 0;
            if (cleared)
            {
                _database.Audit.AppendCore(tx, "peer.accepts_us", peer.Text, "a session with the peer works again");
            }
            return cleared;
        });
    }

    /// <summary>One peer, or null when unknown.</summary>
    public PeerRecord? GetPeer(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Read(connection => ReadPeers(connection, "WHERE p.peer_id = $id", ("$id", peer.Text)).FirstOrDefault());
    }

    /// <summary>All peers, or those in <paramref name="state"/>, ordered by name then Peer ID.</summary>
    public IReadOnlyList<PeerRecord> ListPeers(PeerState? state = null) => _database.Read(connection =>
        state is null
            ? ReadPeers(connection, "")
            : ReadPeers(connection, "WHERE p.state = $state", ("$state", StateNames.ToDb(state.Value))));

    /// <summary>
    /// The Peer IDs (text form) of the peers in <paramref name="state"/>, nothing else: for a loop that runs every second
    /// and only needs to know whether someone is missing (the connector with a thousand trusted peers, all connected).
    /// </summary>
    public IReadOnlyList<string> ListPeerIds(PeerState state) => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT peer_id FROM peers WHERE state = $state", ("$state", StateNames.ToDb(state)));
        using var reader = command.ExecuteReader();
        var ids = new List<string>();
        while (reader.Read())
        {
            ids.Add(reader.GetString(0));
        }
        return ids;
    });

    /// <summary>Blocks an address range (CIDR or a bare address). Invalid: InvalidInput; already blocked: Conflict.</summary>
    public BlockedAddress BlockAddress(string cidr, string? reason = null)
    {
        var range = CidrRange.Parse(cidr);
        reason = CheckReason(reason);
        return _database.Write(tx =>
        {
            var network = range.NetworkBytes();
            var (otherNet, otherLen) = OtherSpelling(range);
            if (SecureMeshDatabase.Scalar(tx,
                    "SELECT 1 FROM blocked_addresses WHERE (network = $net AND prefix_len = $len) OR (network = $net2 AND prefix_len = $len2)",
                    ("$net", network), ("$len", range.PrefixLength), ("$net2", otherNet), ("$len2", otherLen)) is not null)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"address range {range} is already blocked");
            }
            var now = _database.NowMs();
            SecureMeshDatabase.Execute(tx,
                "INSERT INTO blocked_addresses (cidr, network, prefix_len, reason, created) VALUES ($cidr, $net, $len, $reason, $now)",
                ("$cidr", range.ToString()), ("$net", network), ("$len", range.PrefixLength), ("$reason", reason), ("$now", now));
            _database.Audit.AppendCore(tx, "addr.blocked", null, $"cidr={range} reason={reason ?? "-"}");
            return new BlockedAddress(range, reason, StateNames.FromMs(now));
        });
    }

    /// <summary>Lifts an address block given the same range (in any spelling). Invalid: InvalidInput; not blocked: NotFound.</summary>
    public void UnblockAddress(string cidr)
    {
        var range = CidrRange.Parse(cidr);
        _database.Write(tx =>
        {
            // Also a row an older version stored in the IPv4-mapped spelling.
            var (otherNet, otherLen) = OtherSpelling(range);
            if (SecureMeshDatabase.Execute(tx,
                    "DELETE FROM blocked_addresses WHERE (network = $net AND prefix_len = $len) OR (network = $net2 AND prefix_len = $len2)",
                    ("$net", range.NetworkBytes()), ("$len", range.PrefixLength), ("$net2", otherNet), ("$len2", otherLen)) == 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"address range {range} is not blocked");
            }
            _database.Audit.AppendCore(tx, "addr.unblocked", null, $"cidr={range}");
            return 0;
        });
    }

    /// <summary>Blocks a content ID. Invalid: InvalidInput; already blocked: Conflict.</summary>
    public BlockedContent BlockContent(string contentId, string? reason = null)
    {
        ContentIdFormat.Validate(contentId);
        reason = CheckReason(reason);
        return _database.Write(tx =>
        {
            if (SecureMeshDatabase.Scalar(tx, "SELECT 1 FROM blocked_content WHERE content_id = $id", ("$id", contentId)) is not null)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"content {contentId} is already blocked");
            }
            var now = _database.NowMs();
            SecureMeshDatabase.Execute(tx, "INSERT INTO blocked_content (content_id, reason, created) VALUES ($id, $reason, $now)",
                ("$id", contentId), ("$reason", reason), ("$now", now));
            _database.Audit.AppendCore(tx, "content.blocked", null, $"content={contentId} reason={reason ?? "-"}");
            return new BlockedContent(contentId, reason, StateNames.FromMs(now));
        });
    }

    /// <summary>Lifts a content block. Invalid: InvalidInput; not blocked: NotFound.</summary>
    public void UnblockContent(string contentId)
    {
        ContentIdFormat.Validate(contentId);
        _database.Write(tx =>
        {
            if (SecureMeshDatabase.Execute(tx, "DELETE FROM blocked_content WHERE content_id = $id", ("$id", contentId)) == 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"content {contentId} is not blocked");
            }
            _database.Audit.AppendCore(tx, "content.unblocked", null, $"content={contentId}");
            return 0;
        });
    }

    /// <summary>Both blocklists, oldest first.</summary>
    public Blocklist ListBlocklist() => _database.Read(connection =>
    {
        var addresses = new List<BlockedAddress>();
        using (var command = SecureMeshDatabase.Command(connection, "SELECT network, prefix_len, reason, created FROM blocked_addresses ORDER BY created, id"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                addresses.Add(new BlockedAddress(CidrRange.FromStored((byte[])reader.GetValue(0), reader.GetInt32(1)),
                    reader.IsDBNull(2) ? null : reader.GetString(2), StateNames.FromMs(reader.GetInt64(3))));
            }
        }
        var content = new List<BlockedContent>();
        using (var command = SecureMeshDatabase.Command(connection, "SELECT content_id, reason, created FROM blocked_content ORDER BY created, content_id"))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                content.Add(new BlockedContent(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), StateNames.FromMs(reader.GetInt64(2))));
            }
        }
        return new Blocklist(addresses, content);
    });

    /// <summary>
    /// The decision for a peer connecting from <paramref name="address"/>: a blocked peer, then a blocked address,
    /// win over trust. Cheap enough to call on every connection (an indexed lookup plus an in-memory range scan).
    /// </summary>
    public AuthorizationDecision Authorize(PeerId peer, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentNullException.ThrowIfNull(address);
        var (family, number) = Normalize(address);
        return _database.Read(connection =>
        {
            _peerState ??= Prepare(connection, "SELECT state FROM peers WHERE peer_id = $id");
            _peerState.Parameters[0].Value = peer.Text;
            var state = _peerState.ExecuteScalar() as string;
            if (state == "blocked")
            {
                return AuthorizationDecision.BlockedPeer;
            }
            if (InBlockedRange(connection, family, number))
            {
                return AuthorizationDecision.BlockedAddress;
            }
            return state switch
            {
                "trusted" => AuthorizationDecision.Trusted,
                "pending" => AuthorizationDecision.Pending,
                _ => AuthorizationDecision.Unknown,
            };
        });
    }

    /// <summary>True when <paramref name="address"/> falls in a blocked range; for refusing a connection before the handshake.</summary>
    public bool IsAddressBlocked(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var (family, number) = Normalize(address);
        return _database.Read(connection => InBlockedRange(connection, family, number));
    }

    /// <summary>True when <paramref name="contentId"/> is on the content blocklist (an ID of any shape that is not listed is not blocked).</summary>
    public bool IsContentBlocked(string contentId)
    {
        ArgumentNullException.ThrowIfNull(contentId);
        return _database.Read(connection =>
        {
            _contentBlocked ??= Prepare(connection, "SELECT 1 FROM blocked_content WHERE content_id = $id");
            _contentBlocked.Parameters[0].Value = contentId;
            return _contentBlocked.ExecuteScalar() is not null;
        });
    }

    internal void DisposeCommands()
    {
        _peerState?.Dispose();
        _contentBlocked?.Dispose();
    }

    // The IPv4-mapped spelling of an IPv4 range (as older versions stored "::ffff:a.b.c.d" blocks); nothing for IPv6.
    private static (byte[] Network, int PrefixLength) OtherSpelling(CidrRange range) =>
        range.MappedSpelling() is { } mapped ? (mapped.NetworkBytes(), mapped.PrefixLength) : ([], -1);

    private static (AddressFamily Family, UInt128 Number) Normalize(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        return (address.AddressFamily, CidrRange.ToNumber(address));
    }

    // Called under the database lock. The range list is small and changes rarely, so it is cached in memory.
    // Our own commits refresh it at once; another process's commits are noticed by polling PRAGMA data_version
    // at most every RangePollInterval, so a CLI block reaches a running node well within a second.
    private bool InBlockedRange(SqliteConnection connection, AddressFamily family, UInt128 number)
    {
        var time = _database.Time;
        var now = time.GetTimestamp();
        if (_database.LocalCommits != _rangesLocalCommits || time.GetElapsedTime(_rangesPolledAt, now) >= RangePollInterval)
        {
            var stamp = _database.ChangeStamp();
            if (stamp != _rangesStamp)
            {
                var ranges = new List<CidrRange>();
                using var command = SecureMeshDatabase.Command(connection, "SELECT network, prefix_len FROM blocked_addresses");
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    ranges.Add(CidrRange.FromStored((byte[])reader.GetValue(0), reader.GetInt32(1)));
                }
                _blockedRanges = [.. ranges];
                _rangesStamp = stamp;
            }
            _rangesLocalCommits = _database.LocalCommits;
            _rangesPolledAt = now;
        }
        foreach (var range in _blockedRanges)
        {
            if (range.Contains(family, number))
            {
                return true;
            }
        }
        return false;
    }

    private static SqliteCommand Prepare(SqliteConnection connection, string sql)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.Add("$id", SqliteType.Text);
        command.Prepare();
        return command;
    }

    private string? EvictStrangerIfFull(SqliteTransaction tx)
    {
        var pending = (long)SecureMeshDatabase.Scalar(tx, "SELECT count(*) FROM peers WHERE state = 'pending'")!;
        if (pending < MaxPendingPeers)
        {
            return null;
        }
        const string strangers =
            "state = 'pending' AND name IS NULL AND NOT EXISTS (SELECT 1 FROM peer_addresses a WHERE a.peer_id = peers.peer_id AND a.source = 'user')";
        if (SecureMeshDatabase.Scalar(tx, $"SELECT peer_id FROM peers WHERE {strangers} ORDER BY coalesce(last_seen, created), peer_id LIMIT 1") is not string victim)
        {
            return null;
        }
        SecureMeshDatabase.Execute(tx, "DELETE FROM peers WHERE peer_id = $id", ("$id", victim));
        return victim;
    }

    private static PeerState? StateOf(SqliteTransaction tx, PeerId peer) =>
        SecureMeshDatabase.Scalar(tx, "SELECT state FROM peers WHERE peer_id = $id", ("$id", peer.Text)) is string state
            ? StateNames.PeerStateFromDb(state)
            : null;

    private static PeerState RequireState(SqliteTransaction tx, PeerId peer) =>
        StateOf(tx, peer) ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"peer {peer.Text} is not known");

    private void SetState(SqliteTransaction tx, PeerId peer, PeerState state, string? reason) =>
        SecureMeshDatabase.Execute(tx, "UPDATE peers SET state = $state, block_reason = $reason, updated = $now WHERE peer_id = $id",
            ("$state", StateNames.ToDb(state)), ("$reason", reason), ("$now", _database.NowMs()), ("$id", peer.Text));

    private static void InsertPeer(SqliteTransaction tx, PeerId peer, string? name, PeerState state, string? reason, long now, long? firstSeen) =>
        SecureMeshDatabase.Execute(tx,
            """
            INSERT INTO peers (peer_id, name, state, fingerprint, first_seen, last_seen, block_reason, created, updated)
            VALUES ($id, $name, $state, $fingerprint, $seen, $seen, $reason, $now, $now)
            """,
            ("$id", peer.Text), ("$name", name), ("$state", StateNames.ToDb(state)), ("$fingerprint", peer.Fingerprint),
            ("$seen", firstSeen), ("$reason", reason), ("$now", now));

    private static bool Touch(SqliteTransaction tx, PeerId peer, long now) =>
        SecureMeshDatabase.Execute(tx,
            "UPDATE peers SET last_seen = $now, first_seen = coalesce(first_seen, $now) WHERE peer_id = $id",
            ("$now", now), ("$id", peer.Text)) == 1;

    // A peer keeps its MaxSeenAddresses most recently seen addresses, so with the cap on strangers the rows they can
    // make are bounded too (at most 1 + MaxSeenAddresses each).
    private static void TrimSeen(SqliteTransaction tx, PeerId peer) =>
        SecureMeshDatabase.Execute(tx,
            """
            DELETE FROM peer_addresses WHERE peer_id = $id AND source = 'seen' AND address NOT IN (
                SELECT address FROM peer_addresses WHERE peer_id = $id AND source = 'seen'
                ORDER BY coalesce(last_seen, 0) DESC, address LIMIT $keep)
            """,
            ("$id", peer.Text), ("$keep", MaxSeenAddresses));

    private static void UpsertAddress(SqliteTransaction tx, PeerId peer, string address, AddressSource source, long? lastSeen) =>
        // A user-entered address keeps its source when the peer is later seen there.
        SecureMeshDatabase.Execute(tx,
            """
            INSERT INTO peer_addresses (peer_id, address, source, last_seen) VALUES ($id, $address, $source, $seen)
            ON CONFLICT (peer_id, address) DO UPDATE SET last_seen = coalesce(excluded.last_seen, last_seen)
            """,
            ("$id", peer.Text), ("$address", address), ("$source", StateNames.ToDb(source)), ("$seen", lastSeen));

    private static List<PeerRecord> ReadPeers(SqliteConnection connection, string where, params (string, object?)[] parameters)
    {
        var addresses = new Dictionary<string, List<PeerAddress>>(StringComparer.Ordinal);
        using (var command = SecureMeshDatabase.Command(connection,
                   $"SELECT a.peer_id, a.address, a.source, a.last_seen FROM peer_addresses a JOIN peers p ON p.peer_id = a.peer_id {where} ORDER BY a.peer_id, a.address",
                   parameters))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                var id = reader.GetString(0);
                if (!addresses.TryGetValue(id, out var list))
                {
                    addresses[id] = list = [];
                }
                list.Add(new PeerAddress(reader.GetString(1), StateNames.SourceFromDb(reader.GetString(2)),
                    reader.IsDBNull(3) ? null : StateNames.FromMs(reader.GetInt64(3))));
            }
        }
        var peers = new List<PeerRecord>();
        using (var command = SecureMeshDatabase.Command(connection,
                   $"SELECT p.peer_id, p.name, p.state, p.fingerprint, p.first_seen, p.last_seen, p.block_reason, p.created, p.updated, p.refused_at, p.refusals FROM peers p {where} ORDER BY p.name IS NULL, p.name, p.peer_id",
                   parameters))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                var text = reader.GetString(0);
                if (!PeerId.TryParse(text, out var id))
                {
                    // Written by this code from a parsed PeerId, so only tampering gets here; skip rather than fail every listing.
                    continue;
                }
                peers.Add(new PeerRecord(id,
                    reader.IsDBNull(1) ? null : reader.GetString(1),
                    StateNames.PeerStateFromDb(reader.GetString(2)),
                    reader.GetString(3),
                    reader.IsDBNull(4) ? null : StateNames.FromMs(reader.GetInt64(4)),
                    reader.IsDBNull(5) ? null : StateNames.FromMs(reader.GetInt64(5)),
                    reader.IsDBNull(6) ? null : reader.GetString(6),
                    addresses.TryGetValue(text, out var list) ? list : [],
                    StateNames.FromMs(reader.GetInt64(7)),
                    StateNames.FromMs(reader.GetInt64(8)),
                    reader.IsDBNull(9) ? null : StateNames.FromMs(reader.GetInt64(9)),
                    reader.GetInt32(10)));
            }
        }
        return peers;
    }

    private static string? CheckName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return null;
        }
        name = name.Trim();
        if (name.Length > MaxNameLength || name.Any(IsUnprintable))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid peer name: use 1 to {MaxNameLength} printable characters");
        }
        return name;
    }

    // Control characters could rewrite a terminal; format characters (bidi overrides, zero-width joiners) could make
    // one name pass for another in the UI.
    private static bool IsUnprintable(char c) =>
        char.IsControl(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format;

    private static string? CheckReason(string? reason)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            return null;
        }
        reason = reason.Trim();
        if (reason.Length > MaxReasonLength || reason.Any(IsUnprintable))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid reason: use at most {MaxReasonLength} printable characters");
        }
        return reason;
    }
}
