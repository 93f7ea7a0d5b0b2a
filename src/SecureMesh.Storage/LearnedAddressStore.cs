using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>A learned address of a trusted peer: where it came from, when, and when a dial to it last worked.</summary>
public sealed record LearnedAddress(string Address, string Source, DateTimeOffset Learned, DateTimeOffset? LastSuccess);

/// <summary>
/// Addresses of trusted peers that nobody typed: what a peer advertised about itself in identify (<c>identify</c>) and
/// what another trusted peer said about it (<c>exchange</c>), and its relayed (circuit) addresses from either (<c>relay</c>).
/// Only trusted peers get rows; each keeps at most <see cref="MaxPerPeer"/>, the ones that never worked and are oldest
/// going first. A circuit address is kept only when its relay is trusted here too: through any other relay it cannot work.
/// </summary>
public sealed class LearnedAddressStore
{
    /// <summary>Most learned addresses kept per peer.</summary>
    public const int MaxPerPeer = 16;

    private readonly SecureMeshDatabase _database;

    internal LearnedAddressStore(SecureMeshDatabase database) => _database = database;

    /// <summary>
    /// Records <paramref name="addresses"/> (HOST:PORT or TCP multiaddrs, normalized here; circuit addresses for the
    /// source <c>relay</c>) for a trusted <paramref name="peer"/>; returns how many were new. An untrusted or unknown
    /// peer gets nothing (0), nor does a circuit address through a relay that is not trusted.
    /// </summary>
    public int Learn(PeerId peer, IEnumerable<string> addresses, string source)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentNullException.ThrowIfNull(addresses);
        if (source is not ("identify" or "exchange" or "relay"))
        {
            throw new ArgumentException("source is identify, exchange or relay", nameof(source));
        }
        var normalized = new List<string>();
        var relays = new Dictionary<string, PeerId>(StringComparer.Ordinal);
        foreach (var address in addresses.Take(MaxPerPeer))
        {
            try
            {
                if (source == "relay")
                {
                    var circuit = PeerAddressFormat.NormalizeCircuit(address, peer, out var relay);
                    relays[circuit] = relay;
                    normalized.Add(circuit);
                }
                else
                {
                    normalized.Add(PeerAddressFormat.Normalize(address, peer));
                }
            }
            catch (SecureMeshException)
            {
                // Something we cannot dial (a name too long, another peer's /p2p): not learned.
            }
        }
        if (normalized.Count == 0)
        {
            return 0;
        }
        return _database.Write(tx =>
        {
            var state = SecureMeshDatabase.Scalar(tx, "SELECT state FROM peers WHERE peer_id = $id", ("$id", peer.Text)) as string;
            if (state != "trusted")
            {
                return 0;
            }
            var now = _database.NowMs();
            var added = 0;
            foreach (var address in normalized.Distinct(StringComparer.Ordinal))
            {
                if (relays.TryGetValue(address, out var relay)
                    && SecureMeshDatabase.Scalar(tx, "SELECT state FROM peers WHERE peer_id = $id", ("$id", relay.Text)) as string != "trusted")
                {
                    continue;
                }
                added += SecureMeshDatabase.Execute(tx,
                    "INSERT INTO learned_addresses (peer_id, address, source, learned) VALUES ($id, $address, $source, $now) ON CONFLICT (peer_id, address) DO NOTHING",
                    ("$id", peer.Text), ("$address", address), ("$source", source), ("$now", now));
            }
            // Keep the newest and the ones that worked: drop the rest beyond the cap.
            SecureMeshDatabase.Execute(tx,
                """
                DELETE FROM learned_addresses WHERE peer_id = $id AND address NOT IN (
                    SELECT address FROM learned_addresses WHERE peer_id = $id
                    ORDER BY coalesce(last_success, 0) DESC, learned DESC, address LIMIT $max)
                """,
                ("$id", peer.Text), ("$max", MaxPerPeer));
            return added;
        });
    }

    /// <summary>A dial to <paramref name="address"/> worked: it is tried first next time. False when it is not a learned address.</summary>
    public bool MarkSuccess(PeerId peer, string address)
    {
        ArgumentNullException.ThrowIfNull(peer);
        string normalized;
        try
        {
            normalized = PeerAddressFormat.IsCircuit(address)
                ? PeerAddressFormat.NormalizeCircuit(address, peer, out _)
                : PeerAddressFormat.Normalize(address, peer);
        }
        catch (SecureMeshException)
        {
            return false;
        }
        return _database.Write(tx => SecureMeshDatabase.Execute(tx,
            "UPDATE learned_addresses SET last_success = $now WHERE peer_id = $id AND address = $address",
            ("$now", _database.NowMs()), ("$id", peer.Text), ("$address", normalized)) > 0);
    }

    /// <summary>The learned addresses of <paramref name="peer"/>, the last to work first, then the newest.</summary>
    public IReadOnlyList<LearnedAddress> List(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection,
                "SELECT address, source, learned, last_success FROM learned_addresses WHERE peer_id = $id ORDER BY coalesce(last_success, 0) DESC, learned DESC, address",
                ("$id", peer.Text));
            using var reader = command.ExecuteReader();
            var list = new List<LearnedAddress>();
            while (reader.Read())
            {
                list.Add(new LearnedAddress(reader.GetString(0), reader.GetString(1), StateNames.FromMs(reader.GetInt64(2)),
                    reader.IsDBNull(3) ? null : StateNames.FromMs(reader.GetInt64(3))));
            }
            return list;
        });
    }
}
