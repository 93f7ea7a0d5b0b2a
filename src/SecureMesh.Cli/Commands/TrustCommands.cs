using System.CommandLine;
using System.Globalization;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Control;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary>
/// <c>peers …</c>, <c>block …</c>, <c>unblock …</c>, <c>blocklist</c>, <c>log</c>: the trust store from the command line,
/// through the running node's control API when there is one, else on the database directly.
/// </summary>
internal static class TrustCommands
{
    internal delegate Task<int> Body(CliContext ctx, INodeControl control, CancellationToken cancellationToken);

    public static void Add(RootCommand root, CliConsole console)
    {
        root.Subcommands.Add(PeersCommand(console));
        root.Subcommands.Add(BlockCommand(console));
        root.Subcommands.Add(UnblockCommand(console));

        var blocklist = new Command("blocklist", "List blocked address ranges and content IDs");
        SetAction(blocklist, console, async (ctx, control, ct) =>
        {
            var list = await control.GetBlocklistAsync(ct);
            if (ctx.Json)
            {
                ctx.WriteJson(list, CliJsonContext.Output.BlocklistInfo);
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["KIND", "WHAT", "REASON", "SINCE"],
                [
                    .. list.Peers.Select(p => new[] { "peer", p.PeerId, p.Reason ?? string.Empty, Time(p.Time) }),
                    .. list.Addresses.Select(a => new[] { "addr", a.Cidr, a.Reason ?? string.Empty, Time(a.Time) }),
                    .. list.Content.Select(c => new[] { "content", c.ContentId, c.Reason ?? string.Empty, Time(c.Time) }),
                ]);
            return CliApp.Success;
        });
        root.Subcommands.Add(blocklist);

        var since = new Option<string?>("--since") { Description = "Only entries at or after TIME (ISO 8601, or a duration such as 10m, 2h, 7d)", HelpName = "TIME" };
        var verify = new Option<bool>("--verify") { Description = "Check the hash chain and report the first broken link" };
        var anchor = new Option<string?>("--anchor")
        {
            Description = "With --verify: also require entry SEQ to still be there with this hash (printed by an earlier --verify); detects entries cut from the end",
            HelpName = "SEQ:HASH",
        };
        var limit = new Option<int?>("--limit") { Description = "At most N entries (newest)", HelpName = "N" };
        var log = new Command("log", "Show the audit log") { since, verify, anchor, limit };
        log.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var anchorText = parse.GetValue(anchor);
            if (anchorText is not null && !parse.GetValue(verify))
            {
                throw CliApp.UsageError("--anchor goes with --verify");
            }
            if (parse.GetValue(verify))
            {
                var expected = anchorText is null ? ((long, string)?)null : ParseAnchor(anchorText);
                var result = await control.VerifyLogAsync(ct);
                if (!result.Ok)
                {
                    if (ctx.Json)
                    {
                        ctx.WriteJson(result, CliJsonContext.Output.LogVerification);
                    }
                    throw new SecureMeshException(SecureMeshErrorKind.Storage,
                        $"audit log broken at entry {result.BrokenSeq}: {result.Reason}");
                }
                if (expected is var (seq, hash))
                {
                    await CheckAnchorAsync(control, result, seq, hash, ct);
                }
                if (ctx.Json)
                {
                    ctx.WriteJson(result, CliJsonContext.Output.LogVerification);
                }
                else
                {
                    ctx.Out.WriteLine($"audit log intact: {result.Entries} entries, hash chain verified"
                        + (expected is { } a ? $", entry {a.Item1} matches the anchor" : string.Empty));
                    if (result.HeadSeq > 0)
                    {
                        // The chain cannot show that entries were cut from its end; an anchor kept elsewhere can.
                        ctx.Out.WriteLine($"anchor (keep it outside this machine): {result.HeadSeq}:{result.HeadHash}");
                    }
                }
                return CliApp.Success;
            }
            var from = CliArgs.Check(() => ParseSince(parse.GetValue(since), TimeProvider.System));
            if (parse.GetValue(limit) is < 0)
            {
                throw CliApp.UsageError("--limit must not be negative");
            }
            var entries = await control.GetLogAsync(from, parse.GetValue(limit), ct);
            if (ctx.Json)
            {
                ctx.WriteJson(entries, CliJsonContext.Output.LogEntries);
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["SEQ", "TIME", "EVENT", "PEER", "DETAIL"],
                entries.Select(e => new[] { e.Seq.ToString(CultureInfo.InvariantCulture), Time(e.Time), e.Event, e.PeerId ?? "-", e.Detail }));
            return CliApp.Success;
        }, cancellationToken));
        root.Subcommands.Add(log);
    }

    private static Command PeersCommand(CliConsole console)
    {
        var peers = new Command("peers", "Manage who this node trusts");

        var list = new Command("list", "List known peers (trusted, pending, blocked, and discovered on the LAN)");
        SetAction(list, console, (ctx, control, ct) => ListPeersAsync(ctx, control, null, ct));
        peers.Subcommands.Add(list);

        var pending = new Command("pending", "List peers that connected but are not trusted yet");
        SetAction(pending, console, (ctx, control, ct) => ListPeersAsync(ctx, control, "pending", ct));
        peers.Subcommands.Add(pending);

        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var addr = new Option<string[]>("--addr") { Description = "Address of the peer: HOST:PORT (a name is resolved when dialled), a multiaddr such as /dns4/nas.local/tcp/4747[/p2p/PEERID], or a relayed one through a trusted peer, [/ip4/HOST/tcp/PORT]/p2p/RELAY/p2p-circuit[/p2p/PEERID]; may be repeated", HelpName = "ADDR", AllowMultipleArgumentsPerToken = false };
        var name = new Option<string?>("--name") { Description = "A name to show for the peer", HelpName = "NAME" };
        var trust = new Option<bool>("--trust") { Description = "Trust the peer right away" };
        var fingerprint = new Option<string?>("--fingerprint")
        {
            Description = "The fingerprint the peer told you (xxxx-xxxx-…); the peer is refused unless it matches the Peer ID",
            HelpName = "FP",
        };
        var add = new Command("add", "Add a peer by Peer ID") { peerArg, addr, name, trust, fingerprint };
        add.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            // Checked before the node is asked, so bad input is the same error with or without one.
            var peer = CliArgs.Peer(parse.GetValue(peerArg));
            var addresses = (parse.GetValue(addr) ?? []).Select(a => CliArgs.Check(() => NodeControl.NormalizeAddress(a, peer))).ToArray();
            var displayName = CliArgs.Name(parse.GetValue(name));
            if (parse.GetValue(fingerprint) is { } expected)
            {
                CheckFingerprint(peer, expected);
            }
            await control.AddPeerAsync(new AddPeerRequest(peer.Text, addresses, displayName, parse.GetValue(trust)), ct);
            ctx.Out.WriteLine($"added {peer} ({peer.Fingerprint}) as {(parse.GetValue(trust) ? "trusted" : "pending")}");
            await NoteUntrustedRelaysAsync(ctx, control, peer, addresses, ct);
            return CliApp.Success;
        }, cancellationToken));
        peers.Subcommands.Add(add);

        peers.Subcommands.Add(PeerAction(console, "trust", "Trust a peer: it may connect, search and fetch", (c, p, _, ct) => c.TrustPeerAsync(p, ct), "trusted"));
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the blocklist and the audit log)", HelpName = "TEXT" };
        peers.Subcommands.Add(PeerAction(console, "block", "Block a peer: it is disconnected at once and refused from now on", (c, p, r, ct) => c.BlockPeerAsync(p, r, ct), "blocked", reason));
        peers.Subcommands.Add(UnblockPeerCommand(console, "unblock", "Unblock a peer: it becomes pending (not trusted) unless --trust is given"));
        peers.Subcommands.Add(PeerAction(console, "remove", "Forget a peer entirely", (c, p, _, ct) => c.RemovePeerAsync(p, ct), "removed"));

        var newName = new Argument<string>("NAME") { Description = "The new display name" };
        var rename = new Command("rename", "Change a peer's display name") { peerArg, newName };
        rename.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var peer = CliArgs.Peer(parse.GetValue(peerArg));
            var displayName = CliArgs.Name(parse.GetValue(newName)) ?? throw CliApp.UsageError("the name must not be empty");
            await control.RenamePeerAsync(peer.Text, displayName, ct);
            ctx.Out.WriteLine($"renamed {peer} to {displayName}");
            return CliApp.Success;
        }, cancellationToken));
        peers.Subcommands.Add(rename);

        var connectArg = new Argument<string>("PEERID") { Description = "A trusted peer's Peer ID" };
        var connect = new Command("connect", "Ask the running node to dial a trusted peer at its stored addresses") { connectArg };
        connect.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var peer = CliArgs.Peer(parse.GetValue(connectArg));
            var connection = await control.ConnectPeerAsync(peer.Text, ct);
            if (ctx.Json)
            {
                ctx.WriteJson(connection, CliJsonContext.Output.ConnectionInfo);
                return CliApp.Success;
            }
            ctx.Out.WriteLine($"connected to {connection.PeerId} at {connection.Remote}; SAS: {connection.Sas}");
            return CliApp.Success;
        }, cancellationToken));
        peers.Subcommands.Add(connect);
        return peers;
    }

    private static Command PeerAction(CliConsole console, string verb, string description, Func<INodeControl, string, string?, CancellationToken, Task<PeerActionResult>> action, string done, Option<string?>? reason = null)
    {
        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var command = new Command(verb, description) { peerArg };
        if (reason is not null)
        {
            command.Options.Add(reason);
        }
        command.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var peer = CliArgs.Peer(parse.GetValue(peerArg));
            var why = reason is null ? null : CliArgs.Reason(parse.GetValue(reason));
            var result = await action(control, peer.Text, why, ct);
            ctx.Out.WriteLine($"{done} {result.PeerId} ({result.Fingerprint})");
            return CliApp.Success;
        }, cancellationToken));
        return command;
    }

    private static Command BlockCommand(CliConsole console)
    {
        var block = new Command("block", "Block a peer, an address range or a content ID");
        var reason = new Option<string?>("--reason") { Description = "Why (kept in the blocklist and the audit log)", HelpName = "TEXT" };

        var hash = new Argument<string>("HASH") { Description = "A content ID (b3:…)" };
        var content = new Command("content", "Never request, serve or release this content") { hash, reason };
        content.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var id = CliArgs.ContentText(parse.GetValue(hash));
            await control.BlockContentAsync(id, CliArgs.Reason(parse.GetValue(reason)), ct);
            ctx.Out.WriteLine($"blocked content {id}");
            return CliApp.Success;
        }, cancellationToken));
        block.Subcommands.Add(content);

        var cidr = new Argument<string>("CIDR") { Description = "An address or range, IPv4 or IPv6 (10.0.0.0/8, 2001:db8::/32)" };
        var addr = new Command("addr", "Refuse connections from an address range") { cidr, reason };
        addr.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var range = CliArgs.Cidr(parse.GetValue(cidr));
            await control.BlockAddressAsync(range.ToString(), CliArgs.Reason(parse.GetValue(reason)), ct);
            ctx.Out.WriteLine($"blocked addresses {range}");
            return CliApp.Success;
        }, cancellationToken));
        block.Subcommands.Add(addr);

        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var peer = new Command("peer", "Block a peer (same as 'peers block')") { peerArg, reason };
        peer.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var id = CliArgs.Peer(parse.GetValue(peerArg));
            await control.BlockPeerAsync(id.Text, CliArgs.Reason(parse.GetValue(reason)), ct);
            ctx.Out.WriteLine($"blocked {id} ({id.Fingerprint})");
            return CliApp.Success;
        }, cancellationToken));
        block.Subcommands.Add(peer);
        return block;
    }

    private static Command UnblockCommand(CliConsole console)
    {
        var unblock = new Command("unblock", "Remove a block");
        var hash = new Argument<string>("HASH") { Description = "A content ID (b3:…)" };
        var content = new Command("content", "Unblock a content ID") { hash };
        content.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var id = CliArgs.ContentText(parse.GetValue(hash));
            await control.UnblockContentAsync(id, ct);
            ctx.Out.WriteLine($"unblocked content {id}");
            return CliApp.Success;
        }, cancellationToken));
        unblock.Subcommands.Add(content);

        var cidr = new Argument<string>("CIDR") { Description = "The blocked range, as listed by 'blocklist'" };
        var addr = new Command("addr", "Unblock an address range") { cidr };
        addr.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var range = CliArgs.Cidr(parse.GetValue(cidr));
            await control.UnblockAddressAsync(range.ToString(), ct);
            ctx.Out.WriteLine($"unblocked addresses {range}");
            return CliApp.Success;
        }, cancellationToken));
        unblock.Subcommands.Add(addr);

        unblock.Subcommands.Add(UnblockPeerCommand(console, "peer", "Unblock a peer (same as 'peers unblock')"));
        return unblock;
    }

    /// <summary><c>peers unblock PEERID [--trust]</c>: says what the peer becomes; with --trust it is trusted in the same step.</summary>
    private static Command UnblockPeerCommand(CliConsole console, string verb, string description)
    {
        var peerArg = new Argument<string>("PEERID") { Description = "A libp2p Peer ID (12D3KooW…)" };
        var trust = new Option<bool>("--trust") { Description = "Trust the peer as well (otherwise it becomes pending)" };
        var command = new Command(verb, description) { peerArg, trust };
        command.SetAction((parse, cancellationToken) => Run(parse, console, async (ctx, control, ct) =>
        {
            var id = CliArgs.Peer(parse.GetValue(peerArg));
            var result = await control.UnblockPeerAsync(id.Text, ct);
            var state = "pending";
            if (parse.GetValue(trust))
            {
                result = await control.TrustPeerAsync(id.Text, ct);
                state = "trusted";
            }
            if (ctx.Json)
            {
                ctx.WriteJson(new PeerStateJson(result.PeerId, result.Fingerprint, state), CliJsonContext.Output.PeerStateJson);
                return CliApp.Success;
            }
            ctx.Out.WriteLine(state == "trusted"
                ? $"unblocked {result.PeerId} ({result.Fingerprint}): now trusted"
                : $"unblocked {result.PeerId} ({result.Fingerprint}): now pending, not trusted; 'securemesh peers trust {result.PeerId}' trusts it");
            return CliApp.Success;
        }, cancellationToken));
        return command;
    }

    /// <summary>A relayed address is dialled only while its relay is trusted: says so (on stderr) for each one whose relay is not.</summary>
    private static async Task NoteUntrustedRelaysAsync(CliContext ctx, INodeControl control, PeerId peer, string[] addresses, CancellationToken ct)
    {
        if (!addresses.Any(PeerAddressFormat.IsCircuit))
        {
            return;
        }
        var trusted = (await control.ListPeersAsync("trusted", ct)).Select(p => p.PeerId).ToHashSet(StringComparer.Ordinal);
        foreach (var address in addresses)
        {
            if (UntrustedRelayNote(address, peer, trusted.Contains) is { } note)
            {
                ctx.Err.WriteLine("note: " + note);
            }
        }
    }

    /// <summary>
    /// For a normalized relayed address of <paramref name="peer"/> whose relay <paramref name="isTrusted"/> says is not
    /// trusted: that it is dialled only once the relay is (the CLI's and the terminal UI's wording); else null.
    /// </summary>
    internal static string? UntrustedRelayNote(string address, PeerId peer, Func<string, bool> isTrusted)
    {
        return PeerAddressFormat.RelayOf(address, peer) is not { } relay || isTrusted(relay.Text)
            ? null
            : $"{address} goes through {relay}, which is not trusted here: it is dialled once you trust {relay}";
    }

    /// <summary>
    /// Refuses unless <paramref name="expected"/> is the fingerprint of <paramref name="peer"/>'s key (case, spaces and
    /// dashes aside): a Peer ID mistyped by one character still parses, but its fingerprint differs.
    /// </summary>
    internal static void CheckFingerprint(PeerId peer, string expected)
    {
        static string Canon(string text) => new([.. text.Where(char.IsAsciiLetterOrDigit).Select(char.ToLowerInvariant)]);
        var given = Canon(expected);
        if (given.Length == 0)
        {
            throw CliApp.UsageError("--fingerprint: give the fingerprint the peer told you (xxxx-xxxx-xxxx-xxxx-xxxx)");
        }
        if (!string.Equals(given, Canon(peer.Fingerprint), StringComparison.Ordinal))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"fingerprint mismatch: {peer} has fingerprint {peer.Fingerprint}, not {TerminalText.Safe(expected.Trim())}; check the Peer ID for a typo (nothing was added)");
        }
    }

    private static async Task<int> ListPeersAsync(CliContext ctx, INodeControl control, string? state, CancellationToken cancellationToken)
    {
        var peers = await control.ListPeersAsync(state, cancellationToken);
        if (ctx.Json)
        {
            ctx.WriteJson(peers, CliJsonContext.Output.Peers);
            return CliApp.Success;
        }
        if (peers.Count == 0)
        {
            ctx.Out.WriteLine(state == "pending" ? "no pending peers" : "no peers yet; add one with 'securemesh peers add PEERID --addr HOST:PORT'");
            return CliApp.Success;
        }
        Table.Write(ctx.Out, ["PEER ID", "NAME", "STATE", "FINGERPRINT", "LAST SEEN", "ADDRESSES"],
            peers.Select(p => new[]
            {
                p.PeerId, p.Name ?? "-", p.State + (p.Connected ? " (connected)" : string.Empty) + (p.RefusingUs ? " (refusing us)" : string.Empty), p.Fingerprint,
                p.LastSeen is { } seen ? Time(seen) : "never", string.Join(",", p.Addresses),
            }));
        return CliApp.Success;
    }

    private static void SetAction(Command command, CliConsole console, Body body) =>
        command.SetAction((parse, cancellationToken) => Run(parse, console, body, cancellationToken));

    /// <summary>Runs a command against the running node (control API) or, when none runs, the database.</summary>
    internal static Task<int> Run(ParseResult parse, CliConsole console, Body body, CancellationToken cancellationToken) =>
        CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            using var access = NodeAccess.Open(ctx);
            return await body(ctx, access.Control, ct);
        }, cancellationToken);

    /// <summary>Opens (and creates or migrates) the node's database in the data directory.</summary>
    internal static SecureMeshDatabase OpenDatabase(CliContext ctx)
    {
        IdentityStore.EnsureDataDirectory(ctx.Home);
        return SecureMeshDatabase.Open(ctx.Home);
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

    /// <summary>Parses <c>SEQ:HASH</c> (a positive sequence number and a 64-digit hex SHA-256).</summary>
    private static (long Seq, string Hash) ParseAnchor(string text)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0
            && long.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var seq) && seq > 0
            && text.Length - colon - 1 == 64
            && text.AsSpan(colon + 1).ContainsAnyExcept("0123456789abcdefABCDEF") is false)
        {
            return (seq, text[(colon + 1)..].ToLowerInvariant());
        }
        throw CliApp.UsageError("--anchor: expected SEQ:HASH as printed by 'log --verify' (a sequence number and 64 hex digits)");
    }

    /// <summary>The intact chain must still hold entry <paramref name="seq"/> with <paramref name="hash"/>.</summary>
    private static async Task CheckAnchorAsync(INodeControl control, LogVerification result, long seq, string hash, CancellationToken ct)
    {
        if (result.HeadSeq < seq)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"audit log cut: it ends at entry {result.HeadSeq}, but the anchor is entry {seq}: entries were removed from its end");
        }
        // The newest entries down to the anchored one (the chain is intact, so their order is the stored one).
        var span = result.HeadSeq - seq + 1;
        var entries = await control.GetLogAsync(null, span > int.MaxValue ? int.MaxValue : (int)span, ct);
        var entry = entries.FirstOrDefault(e => e.Seq == seq);
        if (entry is null || !string.Equals(entry.Hash, hash, StringComparison.Ordinal))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"audit log rewritten: entry {seq} no longer has the anchored hash");
        }
    }

}
