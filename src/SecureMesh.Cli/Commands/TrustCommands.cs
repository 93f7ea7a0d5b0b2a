using System.CommandLine;
using System.Globalization;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary><c>peers …</c>, <c>block …</c>, <c>unblock …</c>, <c>blocklist</c>, <c>log</c>: the trust store from the command line.</summary>
internal static class TrustCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        root.Subcommands.Add(PeersCommand(console));
        root.Subcommands.Add(BlockCommand(console));
        root.Subcommands.Add(UnblockCommand(console));

        var blocklist = new Command("blocklist", "List blocked address ranges and content IDs");
        blocklist.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = OpenDatabase(ctx);
            var list = db.Trust.ListBlocklist();
            var peers = db.Trust.ListPeers(PeerState.Blocked);
            if (ctx.Json)
            {
                ctx.WriteJson(new
                {
                    peers = peers.Select(p => new { peerId = p.PeerId.Text, name = p.Name, reason = p.BlockReason, time = p.Updated }),
                    addresses = list.Addresses.Select(a => new { cidr = a.Cidr, reason = a.Reason, time = a.Created }),
                    content = list.Content.Select(c => new { contentId = c.ContentId, reason = c.Reason, time = c.Created }),
                });
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["KIND", "WHAT", "REASON", "SINCE"],
                [
                    .. peers.Select(p => new[] { "peer", p.PeerId.Text, p.BlockReason ?? string.Empty, Time(p.Updated) }),
                    .. list.Addresses.Select(a => new[] { "addr", a.Cidr, a.Reason ?? string.Empty, Time(a.Created) }),
                    .. list.Content.Select(c => new[] { "content", c.ContentId, c.Reason ?? string.Empty, Time(c.Created) }),
                ]);
            return CliApp.Success;
        }));
        root.Subcommands.Add(blocklist);

        var since = new Option<string?>("--since") { Description = "Only entries at or after TIME (ISO 8601, or a duration such as 10m, 2h, 7d)", HelpName = "TIME" };
        var verify = new Option<bool>("--verify") { Description = "Check the hash chain and report the first broken link" };
        var limit = new Option<int?>("--limit") { Description = "At most N entries (newest)", HelpName = "N" };
        var log = new Command("log", "Show the audit log") { since, verify, limit };
        log.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = OpenDatabase(ctx);
            if (parse.GetValue(verify))
            {
                var result = db.Audit.Verify();
                if (ctx.Json)
                {
                    ctx.WriteJson(new { ok = result.Ok, entries = result.Entries, brokenSeq = result.BrokenSeq, reason = result.Reason });
                }
                else if (result.Ok)
                {
                    ctx.Out.WriteLine($"audit log intact: {result.Entries} entries, hash chain verified");
                }
                if (!result.Ok)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Storage,
                        $"audit log broken at entry {result.BrokenSeq}: {result.Reason}");
                }
                return CliApp.Success;
            }
            var from = ParseSince(parse.GetValue(since), TimeProvider.System);
            var entries = db.Audit.List(from, parse.GetValue(limit));
            if (ctx.Json)
            {
                ctx.WriteJson(entries.Select(e => new { seq = e.Seq, time = e.Time, @event = e.Event, peerId = e.PeerId, detail = e.Detail, hash = e.Hash }));
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["SEQ", "TIME", "EVENT", "PEER", "DETAIL"],
                entries.Select(e => new[] { e.Seq.ToString(CultureInfo.InvariantCulture), Time(e.Time), e.Event, e.PeerId ?? "-", e.Detail }));
            return CliApp.Success;
        }));
        root.Subcommands.Add(log);
    }

    private static Command PeersCommand(CliConsole console)
    {
        var peers = new Command("peers", "Manage who this node trusts");

        var list = new Command("list", "List known peers (trusted, pending and blocked)");
        list.SetAction(parse => CliApp.Execute(parse, console, ctx => ListPeers(ctx, null)));
        peers.Subcommands.Add(list);

        var pending = new Command("pending", "List peers that connected but are not trusted yet");
        pending.SetAction(parse => CliApp.Execute(parse, console, ctx => ListPeers(ctx, PeerState.Pending)));
        peers.Subcommands.Add(pending);

        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var addr = new Option<string[]>("--addr") { Description = "Address of the peer (HOST:PORT); may be repeated", HelpName = "HOST:PORT", AllowMultipleArgumentsPerToken = false };
        var name = new Option<string?>("--name") { Description = "A name to show for the peer", HelpName = "NAME" };
        var trust = new Option<bool>("--trust") { Description = "Trust the peer right away" };
        var add = new Command("add", "Add a peer by Peer ID") { peerArg, addr, name, trust };
        add.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var peer = PeerId.Parse(parse.GetValue(peerArg));
            var addresses = (parse.GetValue(addr) ?? []).Select(NormalizeAddress).ToArray();
            var displayName = ValidateName(parse.GetValue(name));
            using var db = OpenDatabase(ctx);
            db.Trust.AddPeer(peer, displayName, addresses, parse.GetValue(trust));
            ctx.Out.WriteLine($"added {peer} ({peer.Fingerprint}) as {(parse.GetValue(trust) ? "trusted" : "pending")}");
            return CliApp.Success;
        }));
        peers.Subcommands.Add(add);

        peers.Subcommands.Add(PeerAction(console, "trust", "Trust a peer: it may connect, search and fetch", (db, p, _) => db.Trust.Trust(p), "trusted"));
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the blocklist and the audit log)", HelpName = "TEXT" };
        peers.Subcommands.Add(PeerAction(console, "block", "Block a peer: it is disconnected at once and refused from now on", (db, p, r) => db.Trust.Block(p, r), "blocked", reason));
        peers.Subcommands.Add(PeerAction(console, "unblock", "Unblock a peer (it becomes pending, not trusted)", (db, p, _) => db.Trust.Unblock(p), "unblocked"));
        peers.Subcommands.Add(PeerAction(console, "remove", "Forget a peer entirely", (db, p, _) => db.Trust.Remove(p), "removed"));

        var newName = new Argument<string>("NAME") { Description = "The new display name" };
        var rename = new Command("rename", "Change a peer's display name") { peerArg, newName };
        rename.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var peer = PeerId.Parse(parse.GetValue(peerArg));
            var displayName = ValidateName(parse.GetValue(newName)) ?? throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "the name must not be empty");
            using var db = OpenDatabase(ctx);
            db.Trust.Rename(peer, displayName);
            ctx.Out.WriteLine($"renamed {peer} to {displayName}");
            return CliApp.Success;
        }));
        peers.Subcommands.Add(rename);
        return peers;
    }

    private static Command PeerAction(CliConsole console, string verb, string description, Action<SecureMeshDatabase, PeerId, string?> action, string done, Option<string?>? reason = null)
    {
        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var command = new Command(verb, description) { peerArg };
        if (reason is not null)
        {
            command.Options.Add(reason);
        }
        command.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var peer = PeerId.Parse(parse.GetValue(peerArg));
            var why = reason is null ? null : ValidateReason(parse.GetValue(reason));
            using var db = OpenDatabase(ctx);
            action(db, peer, why);
            ctx.Out.WriteLine($"{done} {peer} ({peer.Fingerprint})");
            return CliApp.Success;
        }));
        return command;
    }

    private static Command BlockCommand(CliConsole console)
    {
        var block = new Command("block", "Block a peer, an address range or a content ID");
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the blocklist and the audit log)", HelpName = "TEXT" };

        var hash = new Argument<string>("HASH") { Description = "A content ID (b3:…)" };
        var content = new Command("content", "Never request, serve or release this content") { hash, reason };
        content.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var id = parse.GetValue(hash)!.Trim();
            ContentIdFormat.Validate(id);
            using var db = OpenDatabase(ctx);
            db.Trust.BlockContent(id, ValidateReason(parse.GetValue(reason)));
            ctx.Out.WriteLine($"blocked content {id}");
            return CliApp.Success;
        }));
        block.Subcommands.Add(content);

        var cidr = new Argument<string>("CIDR") { Description = "An address or range, IPv4 or IPv6 (10.0.0.0/8, 2001:db8::/32)" };
        var addr = new Command("addr", "Refuse connections from an address range") { cidr, reason };
        addr.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var range = CidrRange.Parse(parse.GetValue(cidr));
            using var db = OpenDatabase(ctx);
            db.Trust.BlockAddress(range.ToString(), ValidateReason(parse.GetValue(reason)));
            ctx.Out.WriteLine($"blocked addresses {range}");
            return CliApp.Success;
        }));
        block.Subcommands.Add(addr);

        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var peer = new Command("peer", "Block a peer (same as 'peers block')") { peerArg, reason };
        peer.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var id = PeerId.Parse(parse.GetValue(peerArg));
            using var db = OpenDatabase(ctx);
            db.Trust.Block(id, ValidateReason(parse.GetValue(reason)));
            ctx.Out.WriteLine($"blocked {id} ({id.Fingerprint})");
            return CliApp.Success;
        }));
        block.Subcommands.Add(peer);
        return block;
    }

    private static Command UnblockCommand(CliConsole console)
    {
        var unblock = new Command("unblock", "Remove a block");
        var hash = new Argument<string>("HASH") { Description = "A content ID (b3:…)" };
        var content = new Command("content", "Unblock a content ID") { hash };
        content.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var id = parse.GetValue(hash)!.Trim();
            ContentIdFormat.Validate(id);
            using var db = OpenDatabase(ctx);
            db.Trust.UnblockContent(id);
            ctx.Out.WriteLine($"unblocked content {id}");
            return CliApp.Success;
        }));
        unblock.Subcommands.Add(content);

        var cidr = new Argument<string>("CIDR") { Description = "The blocked range, as listed by 'blocklist'" };
        var addr = new Command("addr", "Unblock an address range") { cidr };
        addr.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var range = CidrRange.Parse(parse.GetValue(cidr));
            using var db = OpenDatabase(ctx);
            db.Trust.UnblockAddress(range.ToString());
            ctx.Out.WriteLine($"unblocked addresses {range}");
            return CliApp.Success;
        }));
        unblock.Subcommands.Add(addr);

        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var peer = new Command("peer", "Unblock a peer (same as 'peers unblock')") { peerArg };
        peer.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var id = PeerId.Parse(parse.GetValue(peerArg));
            using var db = OpenDatabase(ctx);
            db.Trust.Unblock(id);
            ctx.Out.WriteLine($"unblocked {id}");
            return CliApp.Success;
        }));
        unblock.Subcommands.Add(peer);
        return unblock;
    }

    private static int ListPeers(CliContext ctx, PeerState? state)
    {
        using var db = OpenDatabase(ctx);
        var peers = db.Trust.ListPeers(state);
        if (ctx.Json)
        {
            ctx.WriteJson(peers.Select(p => new
            {
                peerId = p.PeerId.Text,
                name = p.Name,
                state = p.State,
                addresses = p.Addresses.Select(a => a.Address),
                fingerprint = p.Fingerprint,
                firstSeen = p.FirstSeen,
                lastSeen = p.LastSeen,
                blockReason = p.BlockReason,
            }));
            return CliApp.Success;
        }
        if (peers.Count == 0)
        {
            ctx.Out.WriteLine(state == PeerState.Pending ? "no pending peers" : "no peers yet; add one with 'securemesh peers add PEERID --addr HOST:PORT'");
            return CliApp.Success;
        }
        Table.Write(ctx.Out, ["PEER ID", "NAME", "STATE", "FINGERPRINT", "LAST SEEN", "ADDRESSES"],
            peers.Select(p => new[]
            {
                p.PeerId.Text, p.Name ?? "-", p.State.ToString().ToLowerInvariant(), p.Fingerprint,
                p.LastSeen is { } seen ? Time(seen) : "never", string.Join(",", p.Addresses.Select(a => a.Address)),
            }));
        return CliApp.Success;
    }

    /// <summary>Opens (and creates or migrates) the node's database in the data directory.</summary>
    internal static SecureMeshDatabase OpenDatabase(CliContext ctx)
    {
        IdentityStore.EnsureDataDirectory(ctx.Home);
        return SecureMeshDatabase.Open(ctx.Home);
    }

    internal static string NormalizeAddress(string text)
    {
        var endPoint = Node.NodeSettings.ParseEndPoint(text);
        if (endPoint.Port == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid address '{text}': the port must not be 0");
        }
        return endPoint.ToString();
    }

    private static string? ValidateName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return null;
        }
        var trimmed = name.Trim();
        if (trimmed.Length > 64 || trimmed.Any(char.IsControl))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "a peer name is at most 64 characters, without control characters");
        }
        return trimmed;
    }

    private static string? ValidateReason(string? reason)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            return null;
        }
        var trimmed = reason.Trim();
        if (trimmed.Length > 500 || trimmed.Any(char.IsControl))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "a reason is at most 500 characters, without control characters");
        }
        return trimmed;
    }

    internal static DateTimeOffset? ParseSince(string? text, TimeProvider time)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        var t = text.Trim();
        if (t.Length >= 2 && char.IsAsciiLetter(t[^1]) && double.TryParse(t[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var amount) && amount >= 0)
        {
            TimeSpan? span = t[^1] switch
            {
                's' => TimeSpan.FromSeconds(amount),
                'm' => TimeSpan.FromMinutes(amount),
                'h' => TimeSpan.FromHours(amount),
                'd' => TimeSpan.FromDays(amount),
                _ => null,
            };
            if (span is { } s)
            {
                return time.GetUtcNow() - s;
            }
        }
        if (DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            return at;
        }
        throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid --since '{t}': use an ISO 8601 time (2026-11-25T10:00Z) or a duration (30m, 2h, 7d)");
    }

    internal static string Time(DateTimeOffset t) => t.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
