using System.Net;
using System.Net.Sockets;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Discovery;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Control;

/// <summary>
/// The control operations, in-process: behind the control socket with a running node, or straight on the database when
/// no node runs (then <c>node</c> is null and status says <c>running: false</c>).
/// </summary>
internal sealed class NodeControlService : INodeControl
{
    private static readonly TimeSpan DialTimeout = TimeSpan.FromSeconds(5);

    private readonly SecureMeshDatabase _db;
    private readonly MeshNode? _node;
    private readonly string _home;

    public NodeControlService(string home, SecureMeshDatabase db, MeshNode? node = null, DiscoveryService? discovery = null, DiscoveredPeers? discovered = null)
    {
        _home = home;
        _db = db;
        _node = node;
        Discovery = discovery;
        Discovered = discovered;
    }

    /// <summary>The LAN discovery of the running node, if any.</summary>
    public DiscoveryService? Discovery { get; }

    /// <summary>Peers seen by beacon, if discovery runs.</summary>
    public DiscoveredPeers? Discovered { get; }

    /// <summary>Set by the transfer engine so its transfers appear in the status.</summary>
    public ITransferStatusSource? Transfers { get; set; }

    public Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken)
    {
        if (_node is null)
        {
            var peer = IdentityStore.Exists(_home) ? IdentityStore.LoadPeerId(_home) : null;
            var listen = _db.Config.Get(NodeSettings.Listen) ?? NodeSettings.DefaultListen;
            var discovery = NodeSettings.Get(NodeSettings.Discovery).Normalize(_db.Config.Get(NodeSettings.Discovery) ?? "on");
            return Task.FromResult(new NodeStatus(false, peer?.Text, peer?.Fingerprint, [listen], discovery, [], [], [], RefusingUs(_db.Trust.ListPeers(PeerState.Trusted))));
        }
        var trusted = _db.Trust.ListPeers(PeerState.Trusted);
        var names = trusted.ToDictionary(p => p.PeerId, p => p.Name);
        var connections = _node.Sessions
            .OrderBy(s => s.Since)
            .Select(s => ToConnectionInfo(s, names.GetValueOrDefault(s.PeerId)))
            .ToList();
        // Peers without a live session whose last handshake is known: the dialling side can still read the words.
        var known = _db.Trust.ListPeers().Where(p => p.State != PeerState.Blocked).ToDictionary(p => p.PeerId, p => p.Name);
        var handshakes = _node.RecentHandshakes
            .Where(h => _node.GetSession(h.PeerId) is null && known.ContainsKey(h.PeerId))
            .OrderByDescending(h => h.At)
            .Select(h => new HandshakeInfo(h.PeerId.Text, known.GetValueOrDefault(h.PeerId), h.Sas, h.At, h.Direction.ToString().ToLowerInvariant(), h.Ended))
            .ToList();
        return Task.FromResult(new NodeStatus(
            true,
            _node.PeerId.Text,
            _node.PeerId.Fingerprint,
            [_node.LocalEndPoint.ToString()],
            Discovery?.State ?? "off",
            connections,
            Transfers?.GetTransfers() ?? [],
            handshakes,
            RefusingUs(trusted),
            ReachabilityOf(_node),
            _node.Reach.PortMapping));
    }

    public Task<IReadOnlyList<PeerInfo>> ListPeersAsync(string? state, CancellationToken cancellationToken)
    {
        var wanted = state?.Trim().ToLowerInvariant();
        PeerState? filter = wanted switch
        {
            null or "" or "all" or "discovered" => null,
            "trusted" => PeerState.Trusted,
            "pending" => PeerState.Pending,
            "blocked" => PeerState.Blocked,
            _ => throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"unknown peer state '{state}': use trusted, pending, blocked or discovered"),
        };
        var result = new List<PeerInfo>();
        if (wanted != "discovered")
        {
            result.AddRange(_db.Trust.ListPeers(filter).Select(ToPeerInfo));
        }
        if (filter is null && Discovered is not null)
        {
            var known = result.Select(p => p.PeerId).ToHashSet(StringComparer.Ordinal);
            foreach (var d in Discovered.Snapshot())
            {
                if (!known.Contains(d.PeerId.Text) && _db.Trust.GetPeer(d.PeerId) is null)
                {
                    result.Add(new PeerInfo(d.PeerId.Text, null, "discovered", [PeerAddressFormat.FromEndPoint(d.EndPoint)], d.PeerId.Fingerprint, d.FirstSeen, d.LastSeen, null, false));
                }
            }
        }
        return Task.FromResult<IReadOnlyList<PeerInfo>>(result);
    }

    public Task<PeerInfo> AddPeerAsync(AddPeerRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var peer = ParsePeer(request.PeerId);
        var addresses = (request.Addresses ?? []).Select(a => NormalizeAddress(a, peer)).ToArray();
        var record = _db.Trust.AddPeer(peer, ValidateName(request.Name), addresses, request.Trust);
        return Task.FromResult(ToPeerInfo(record));
    }

    public Task<PeerActionResult> TrustPeerAsync(string peerId, CancellationToken cancellationToken) =>
        PeerAction(peerId, p => _db.Trust.Trust(p));

    public Task<PeerActionResult> BlockPeerAsync(string peerId, string? reason, CancellationToken cancellationToken)
    {
        var why = ValidateReason(reason);
        return PeerAction(peerId, p => _db.Trust.Block(p, why));
    }

    public Task<PeerActionResult> UnblockPeerAsync(string peerId, CancellationToken cancellationToken) =>
        PeerAction(peerId, p => _db.Trust.Unblock(p));

    public Task<PeerActionResult> RenamePeerAsync(string peerId, string name, CancellationToken cancellationToken)
    {
        var displayName = ValidateName(name) ?? throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "the name must not be empty");
        return PeerAction(peerId, p =>
        {
            _db.Trust.Rename(p, displayName);
            return true;
        });
    }

    public Task<PeerActionResult> RemovePeerAsync(string peerId, CancellationToken cancellationToken) =>
        PeerAction(peerId, p =>
        {
            _db.Trust.Remove(p);
            return true;
        });

    public async Task<PingResult> PingAsync(string address, int count, CancellationToken cancellationToken)
    {
        var node = _node ?? throw new SecureMeshException(SecureMeshErrorKind.Conflict, "the node is not running; start it with 'securemesh run'");
        var (peer, rtts) = await node.PingAddressAsync(address, count, cancellationToken);
        return new PingResult(peer.Text, address, [.. rtts.Select(r => r.TotalMilliseconds)]);
    }

    public async Task<ConnectionInfo> ConnectPeerAsync(string peerId, CancellationToken cancellationToken)
    {
        var peer = ParsePeer(peerId);
        var node = _node ?? throw new SecureMeshException(SecureMeshErrorKind.Conflict, "the node is not running; start it with 'securemesh run'");
        var record = _db.Trust.GetPeer(peer) ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"unknown peer {peer}");
        if (record.State != PeerState.Trusted)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{peer} is {record.State.ToString().ToLowerInvariant()}, not trusted; trust it first");
        }
        if (node.GetSession(peer) is { } open)
        {
            return ToConnectionInfo(open, record.Name);
        }
        if (record.Addresses.Count == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no address known for {peer}; add one with 'peers add' or let discovery find it");
        }
        var failures = new List<string>();
        // User-given addresses first, then the ones seen or discovered, most recent first; relayed ones after direct ones.
        foreach (var address in record.Addresses.OrderBy(a => a.Source == AddressSource.User ? 0 : 1)
                     .ThenBy(a => PeerAddressFormat.IsCircuit(a.Address) ? 1 : 0).ThenByDescending(a => a.LastSeen))
        {
            // A relayed one too, through its relay; as the connector, only while this node trusts that relay.
            if (!DialAddress.TryParse(address.Address, out _, out _))
            {
                if (PeerAddressFormat.RelayOf(address.Address, peer) is not { } relay)
                {
                    continue;
                }
                if (_db.Trust.GetPeer(relay)?.State != PeerState.Trusted)
                {
                    failures.Add($"{address.Address}: its relay {relay} is not trusted here");
                    continue;
                }
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(DialTimeout);
            try
            {
                var session = await node.ConnectAsync(peer, address.Address, timeout.Token);
                return ToConnectionInfo(session, record.Name);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                failures.Add($"{address.Address}: timed out");
            }
            catch (SecureMeshException e) when (e.Kind is SecureMeshErrorKind.Network or SecureMeshErrorKind.Protocol)
            {
                failures.Add($"{address.Address}: {e.Message}");
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                failures.Add($"{address.Address}: {e.Message}");
            }
        }
        throw new SecureMeshException(SecureMeshErrorKind.Network, $"could not connect to {peer}: {string.Join("; ", failures)}");
    }

    public Task<IReadOnlyList<DiscoveredPeerInfo>> ListDiscoveredAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<DiscoveredPeerInfo> list = Discovered is null
            ? []
            : [.. Discovered.Snapshot().Select(d => new DiscoveredPeerInfo(
                d.PeerId.Text,
                d.PeerId.Fingerprint,
                PeerAddressFormat.FromEndPoint(d.EndPoint),
                d.LastSeen,
                _db.Trust.GetPeer(d.PeerId)?.State.ToString().ToLowerInvariant() ?? "discovered"))];
        return Task.FromResult(list);
    }

    public Task<BlocklistInfo> GetBlocklistAsync(CancellationToken cancellationToken)
    {
        var list = _db.Trust.ListBlocklist();
        var peers = _db.Trust.ListPeers(PeerState.Blocked);
        return Task.FromResult(new BlocklistInfo(
            [.. peers.Select(p => new BlockedPeerInfo(p.PeerId.Text, p.Name, p.BlockReason, p.Updated))],
            [.. list.Addresses.Select(a => new BlockedAddressInfo(a.Cidr, a.Reason, a.Created))],
            [.. list.Content.Select(c => new BlockedContentInfo(c.ContentId, c.Reason, c.Created))]));
    }

    public Task<BlockedContentInfo> BlockContentAsync(string contentId, string? reason, CancellationToken cancellationToken)
    {
        var id = (contentId ?? string.Empty).Trim();
        ContentIdFormat.Validate(id);
        var blocked = _db.Trust.BlockContent(id, ValidateReason(reason));
        return Task.FromResult(new BlockedContentInfo(blocked.ContentId, blocked.Reason, blocked.Created));
    }

    public Task UnblockContentAsync(string contentId, CancellationToken cancellationToken)
    {
        var id = (contentId ?? string.Empty).Trim();
        ContentIdFormat.Validate(id);
        _db.Trust.UnblockContent(id);
        return Task.CompletedTask;
    }

    public Task<BlockedAddressInfo> BlockAddressAsync(string cidr, string? reason, CancellationToken cancellationToken)
    {
        var range = CidrRange.Parse(cidr);
        var blocked = _db.Trust.BlockAddress(range.ToString(), ValidateReason(reason));
        // Cut sessions from the range now rather than at the next poll.
        _node?.ReevaluateSessions();
        return Task.FromResult(new BlockedAddressInfo(blocked.Cidr, blocked.Reason, blocked.Created));
    }

    public Task UnblockAddressAsync(string cidr, CancellationToken cancellationToken)
    {
        _db.Trust.UnblockAddress(CidrRange.Parse(cidr).ToString());
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<SettingInfo>> ListConfigAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<SettingInfo> rows = [.. NodeSettings.All.Select(s =>
        {
            var value = _db.Config.Get(s.Key);
            return new SettingInfo(s.Key, value ?? s.Default, value is null, s.Description);
        })];
        return Task.FromResult(rows);
    }

    public Task<ConfigValue> GetConfigAsync(string key, CancellationToken cancellationToken)
    {
        var setting = NodeSettings.Get(key);
        return Task.FromResult(new ConfigValue(setting.Key, _db.Config.Get(setting.Key) ?? setting.Default));
    }

    public async Task<ConfigSetResult> SetConfigAsync(string key, string value, CancellationToken cancellationToken)
    {
        var setting = NodeSettings.Get(key);
        var normalized = setting.Normalize(value ?? string.Empty);
        _db.Config.Set(setting.Key, normalized);
        if (_node is null)
        {
            return new ConfigSetResult(setting.Key, normalized, "stored", null);
        }
        switch (setting.Key)
        {
            case NodeSettings.Discovery when Discovery is not null:
                var on = normalized == "on";
                await Discovery.SetEnabledAsync(on, cancellationToken);
                return new ConfigSetResult(setting.Key, normalized, "now", on ? $"discovery is {Discovery.State}" : "discovery stopped");
            case NodeSettings.Listen or NodeSettings.MaxConnections or NodeSettings.HandshakeTimeout or NodeSettings.PortMapping:
                return new ConfigSetResult(setting.Key, normalized, "restart", "takes effect on restart");
            default:
                return new ConfigSetResult(setting.Key, normalized, "now", null);
        }
    }

    public Task<IReadOnlyList<LogEntryInfo>> GetLogAsync(DateTimeOffset? since, int? limit, CancellationToken cancellationToken)
    {
        if (limit is < 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "the limit must not be negative");
        }
        IReadOnlyList<LogEntryInfo> entries = [.. _db.Audit.List(since, limit).Select(e => new LogEntryInfo(e.Seq, e.Time, e.Event, e.PeerId, e.Detail, e.Hash))];
        return Task.FromResult(entries);
    }

    public Task<LogVerification> VerifyLogAsync(CancellationToken cancellationToken)
    {
        var result = _db.Audit.Verify();
        return Task.FromResult(new LogVerification(result.Ok, result.Entries, result.BrokenSeq, result.Reason, result.HeadSeq, result.HeadHash));
    }

    private Task<PeerActionResult> PeerAction(string peerId, Func<PeerId, bool> action)
    {
        var peer = ParsePeer(peerId);
        var changed = action(peer);
        // A block or removal must cut the session now, not at the next poll.
        _node?.ReevaluateSessions();
        return Task.FromResult(new PeerActionResult(peer.Text, peer.Fingerprint, changed));
    }

    /// <summary>The listen addresses, then the learned ones, each with its reachability.</summary>
    private static List<ReachabilityInfo> ReachabilityOf(MeshNode node)
    {
        var reach = node.Reach;
        var advertised = reach.Advertised.Select(a => a.EndPoint).ToHashSet();
        var sources = reach.External.ToDictionary(a => a.EndPoint, a => a.Source);
        var states = reach.States.ToDictionary(s => s.Address);
        var all = ListenAddresses.Expand(node.LocalEndPoint).Where(e => !IPAddress.IsLoopback(e.Address))
            .Concat(reach.External.Select(a => a.EndPoint)).Concat(states.Keys).Distinct();
        return
        [
            .. all.Select(e => new ReachabilityInfo(
                MultiaddrBytes.Text(e),
                NodeReach.Name(reach.StateOf(e)),
                sources.GetValueOrDefault(e) ?? "listen",
                advertised.Contains(e) || !sources.ContainsKey(e),
                states.TryGetValue(e, out var s) ? s.At : null)),
        ];
    }

    private static List<RefusalInfo> RefusingUs(IEnumerable<PeerRecord> peers) =>
    [
        .. peers.Where(p => p.RefusingUs && p.RefusedAt is not null)
            .Select(p => new RefusalInfo(p.PeerId.Text, p.Name, p.RefusedAt!.Value, p.Refusals, Transfer.PeerConnector.NextAttemptAfterRefusal(p)!.Value)),
    ];

    private PeerInfo ToPeerInfo(PeerRecord p) => new(
        p.PeerId.Text,
        p.Name,
        p.State.ToString().ToLowerInvariant(),
        [.. p.Addresses.Select(a => a.Address)],
        p.Fingerprint,
        p.FirstSeen,
        p.LastSeen,
        p.BlockReason,
        _node?.GetSession(p.PeerId) is not null,
        p.RefusingUs,
        p.RefusedAt);

    private static ConnectionInfo ToConnectionInfo(PeerSession s, string? name) => new(
        s.PeerId.Text,
        name,
        s.Direction.ToString().ToLowerInvariant(),
        s.Since,
        s.BytesSent,
        s.BytesReceived,
        s.ShortAuthString,
        s.RemoteEndPoint?.ToString(),
        ConnectionPaths.Name(s.Path),
        s.Path == ConnectionPath.Relayed ? s.RelayPeerId?.Text : null);

    internal static PeerId ParsePeer(string? text) => PeerId.Parse(text);

    /// <summary>The canonical form of a peer's address (<c>HOST:PORT</c> or a TCP multiaddr, whose <c>/p2p</c> must be <paramref name="peer"/>); InvalidInput with the reason otherwise.</summary>
    internal static string NormalizeAddress(string text, PeerId peer) => PeerAddressFormat.Normalize(text, peer);

    internal static string? ValidateName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return null;
        }
        var trimmed = name.Trim();
        if (trimmed.Length > 64 || trimmed.Any(c => char.IsControl(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "a peer name is at most 64 characters, without control characters");
        }
        return trimmed;
    }

    internal static string? ValidateReason(string? reason)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            return null;
        }
        var trimmed = reason.Trim();
        if (trimmed.Length > 500 || trimmed.Any(c => char.IsControl(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "a reason is at most 500 characters, without control characters");
        }
        return trimmed;
    }
}
