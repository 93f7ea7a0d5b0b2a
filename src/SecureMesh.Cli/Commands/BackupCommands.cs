using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Backup;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary>
/// <c>backup offer | offers | revoke | add | list | remove | status | versions | check</c> and <c>restore</c>: backup to
/// trusted peers. The records live in the database, so these commands work the same with or without a running node: a
/// running node notices a new path (or a requested check) within seconds; without one, <c>add</c>, <c>check</c> and
/// <c>restore</c> run the node themselves for as long as they need it.
/// </summary>
internal static class BackupCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var backup = new Command("backup", "Back up folders, encrypted, to trusted peers that offer space; offer space to them");
        var passphraseStdin = new Option<bool>("--passphrase-stdin") { Description = "Read the identity's passphrase from the first line of standard input" };
        var peer = new Argument<string>("PEERID") { Description = "A trusted peer's ID (12D3KooW…)" };
        var path = new Argument<string>("PATH") { Description = "A folder or file" };

        var quota = new Option<string>("--quota") { Description = "Space offered: bytes, or a whole number with k, m, g or t (powers of 1024), e.g. 50g", HelpName = "SIZE", Required = true };
        var offer = new Command("offer", "Offer backup space to a trusted peer (a new quota replaces the old one); audited") { peer, quota };
        offer.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, (ctx, ct) =>
        {
            var id = CliArgs.Peer(parse.GetValue(peer));
            var size = ParseSize(parse.GetValue(quota));
            using var db = TrustCommands.OpenDatabase(ctx);
            RequireTrusted(db, id);
            db.Backup.Offer(id, size);
            return Task.FromResult(Done(ctx, new BackupOfferJson(id.Text, size), CliJsonContext.Output.BackupOfferJson, $"offered {Tui.Fmt.Size(size)} to {id}"));
        }, cancellationToken));
        backup.Subcommands.Add(offer);

        var offers = new Command("offers", "List the space offered to peers and what they use");
        offers.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, (ctx, ct) =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var all = db.Backup.ListOffers();
            if (ctx.Json)
            {
                ctx.WriteJson(all.Select(o => new BackupOfferEntryJson(o.PeerId.Text, db.Trust.GetPeer(o.PeerId)?.Name, o.Quota, o.Used, o.Created)), CliJsonContext.Output.BackupOffers);
                return Task.FromResult(CliApp.Success);
            }
            if (all.Count == 0)
            {
                ctx.Out.WriteLine("no offers; offer space with 'securemesh backup offer PEERID --quota SIZE'");
                return Task.FromResult(CliApp.Success);
            }
            Table.Write(ctx.Out, ["PEER", "NAME", "QUOTA", "USED"],
                all.Select(o => new[] { o.PeerId.Text, db.Trust.GetPeer(o.PeerId)?.Name ?? "-", Tui.Fmt.Size(o.Quota), Tui.Fmt.Size(o.Used) }));
            return Task.FromResult(CliApp.Success);
        }, cancellationToken));
        backup.Subcommands.Add(offers);

        var revoke = new Command("revoke", "Withdraw an offer and delete everything held for that peer; audited") { peer };
        revoke.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, (ctx, ct) =>
        {
            var id = CliArgs.Peer(parse.GetValue(peer));
            using var db = TrustCommands.OpenDatabase(ctx);
            if (!db.Backup.Revoke(id))
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no offer was made to {id}");
            }
            new HeldBlobStore(ctx.Home).DeleteOwner(id);
            return Task.FromResult(Done(ctx, new BackupRevokedJson(id.Text, Revoked: true), CliJsonContext.Output.BackupRevokedJson, $"revoked the offer to {id}; what it stored here is deleted"));
        }, cancellationToken));
        backup.Subcommands.Add(revoke);

        var to = new Option<string>("--to") { Description = "The holders: trusted peers' IDs, comma-separated", HelpName = "PEERID,…", Required = true };
        var copies = new Option<int?>("--copies") { Description = "Holders that must have everything (default: all of them)", HelpName = "N" };
        var keep = new Option<string?>("--keep") { Description = "Old versions kept: staggered (default), forever, or a number", HelpName = "POLICY" };
        var wait = new Option<bool>("--wait") { Description = "Return when every holder has everything (exit 0) or fail with the reason (exit 1)" };
        var add = new Command("add", "Back up a folder or file to trusted peers (encrypted with keys from this identity)") { path, to, copies, keep, wait, passphraseStdin };
        add.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var holders = (parse.GetValue(to) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(CliArgs.Peer).ToList();
            string full;
            int copyCount;
            string policy;
            using (var db = TrustCommands.OpenDatabase(ctx))
            {
                (full, copyCount, policy) = AddSet(db, parse.GetValue(path)!, holders, parse.GetValue(copies), parse.GetValue(keep));
            }
            holders = [.. holders.Distinct()];
            if (NodeLock.IsHeld(ctx.Home))
            {
                if (!parse.GetValue(wait))
                {
                    return Done(ctx, new BackupAddJson(full, holders.Select(h => h.Text), copyCount, policy), CliJsonContext.Output.BackupAddJson, $"backing up {full}; the running node uploads it (see 'securemesh backup status')");
                }
                return await WaitForNodeAsync(ctx, full, ct);
            }
            await using var runtime = await NodeRuntime.StartAsync(ctx, parse.GetValue(passphraseStdin), ct);
            var outcomes = await runtime.Backup.RunAsync(full, ct);
            return Finish(ctx, runtime.Db, full, outcomes.Where(o => o.Error is not null).Select(o => $"{o.Holder}: {o.Error}").ToList());
        }, cancellationToken));
        backup.Subcommands.Add(add);

        var list = new Command("list", "List the backed-up folders and files");
        list.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, (ctx, ct) =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var status = BackupStatusReport.Compute(db);
            if (ctx.Json)
            {
                ctx.WriteJson(status.Select(s => new BackupListEntryJson(s.Path, s.Holders.Select(h => h.PeerId), s.Copies, s.Keep, s.Files, s.Bytes)), CliJsonContext.Output.BackupList);
                return Task.FromResult(CliApp.Success);
            }
            if (status.Count == 0)
            {
                ctx.Out.WriteLine("nothing is backed up; start with 'securemesh backup add PATH --to PEERID'");
                return Task.FromResult(CliApp.Success);
            }
            Table.Write(ctx.Out, ["PATH", "FILES", "SIZE", "COPIES", "KEEP", "HOLDERS"],
                status.Select(s => new[] { s.Path, Num(s.Files), Tui.Fmt.Size(s.Bytes), Num(s.Copies), s.Keep, string.Join(", ", s.Holders.Select(h => Name(db, h.PeerId))) }));
            return Task.FromResult(CliApp.Success);
        }, cancellationToken));
        backup.Subcommands.Add(list);

        var remove = new Command("remove", "Stop backing up a path; its blobs are deleted from the holders at the next round") { path };
        remove.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, (ctx, ct) =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var full = RemoveSet(db, parse.GetValue(path)!);
            return Task.FromResult(Done(ctx, new PathRemovedJson(full, Removed: true), CliJsonContext.Output.PathRemovedJson, $"no longer backing up {full}"));
        }, cancellationToken));
        backup.Subcommands.Add(remove);

        var status = new Command("status", "Per backed-up path: holders, bytes, last good proof, versions, under-replication");
        status.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, (ctx, ct) =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var all = BackupStatusReport.Compute(db);
            if (ctx.Json)
            {
                ctx.WriteJson(all, CliJsonContext.Output.BackupStatus);
                return Task.FromResult(CliApp.Success);
            }
            if (all.Count == 0)
            {
                ctx.Out.WriteLine("nothing is backed up");
                return Task.FromResult(CliApp.Success);
            }
            foreach (var s in all)
            {
                ctx.Out.WriteLine($"{s.Path}: {Num(s.Files)} file(s), {Tui.Fmt.Size(s.Bytes)}, {Num(s.Versions)} version(s), {s.Keep}, {Num(s.Copies)} cop{(s.Copies == 1 ? "y" : "ies")}{(s.UnderReplicated ? " — UNDER-REPLICATED" : "")}");
                Table.Write(ctx.Out, ["  HOLDER", "STATE", "STORED", "MISSING", "LAST PROOF", "REASON"], s.Holders.Select(h => new[]
                {
                    "  " + Name(db, h.PeerId), h.State, Tui.Fmt.Size(h.Bytes), Num(h.Missing), h.LastProof is { } t ? TrustCommands.Time(t) : "never", h.Reason ?? "",
                }));
            }
            return Task.FromResult(CliApp.Success);
        }, cancellationToken));
        backup.Subcommands.Add(status);

        var versions = new Command("versions", "The kept versions of a backed-up file (or of every file of a backed-up folder)") { path };
        versions.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, (ctx, ct) =>
        {
            var full = Path.GetFullPath(parse.GetValue(path)!);
            using var db = TrustCommands.OpenDatabase(ctx);
            var all = BackupStatusReport.Versions(db, full);
            if (ctx.Json)
            {
                ctx.WriteJson(all, CliJsonContext.Output.BackupVersions);
                return Task.FromResult(CliApp.Success);
            }
            if (all.Count == 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no backed-up versions of {full}");
            }
            Table.Write(ctx.Out, ["TIME (UTC)", "SIZE", "PATH"], all.Select(v => new[]
            {
                v.Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture), v.Deleted ? "deleted" : Tui.Fmt.Size(v.Size), v.Path,
            }));
            return Task.FromResult(CliApp.Success);
        }, cancellationToken));
        backup.Subcommands.Add(versions);

        var check = new Command("check", "Challenge every holder now for proofs of storage (otherwise every backup-check-interval, default a day)") { passphraseStdin };
        check.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            if (NodeLock.IsHeld(ctx.Home))
            {
                return await CheckThroughNodeAsync(ctx, ct);
            }
            await using var runtime = await NodeRuntime.StartAsync(ctx, parse.GetValue(passphraseStdin), ct);
            var outcomes = await runtime.Backup.ProveAsync(ct);
            if (ctx.Json)
            {
                PrintCheckJson(ctx, outcomes);
            }
            else
            {
                foreach (var o in outcomes)
                {
                    ctx.Out.WriteLine(o.Error is null ? $"{Name(runtime.Db, o.Holder.Text)}: every proof passed" : $"{Name(runtime.Db, o.Holder.Text)}: FAILED: {o.Error}");
                }
            }
            return outcomes.All(o => o.Error is null) ? CliApp.Success : CliApp.Failure;
        }, cancellationToken));
        backup.Subcommands.Add(check);
        root.Subcommands.Add(backup);
        root.Subcommands.Add(RestoreCommand(console, passphraseStdin));
    }

    private static Command RestoreCommand(CliConsole console, Option<bool> passphraseStdin)
    {
        var from = new Option<string>("--from")
        {
            Description = "The holders to restore from (comma-separated Peer IDs). Restore TRUSTS these peers: they are added as trusted peers of this node",
            HelpName = "PEERID,…",
            Required = true,
        };
        var addr = new Option<string?>("--addr") { Description = "Where each holder is (HOST:PORT or a multiaddr, comma-separated, in the order of --from); default: the addresses stored", HelpName = "ADDR,…" };
        var to = new Option<string?>("--to") { Description = "Restore under this folder (each backed-up folder by its name) instead of the original paths", HelpName = "DIR" };
        var version = new Option<string?>("--version") { Description = "Restore the files as they were at this time (ISO 8601, or a duration ago: 2h, 3d)", HelpName = "TIME" };
        var restore = new Command("restore",
            "Restore backups and the trust store from holders, with this identity's key alone (after 'keys import'); every file is verified before it is written")
        {
            from, addr, to, version, passphraseStdin,
        };
        restore.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var holders = (parse.GetValue(from) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(CliArgs.Peer).ToList();
            var addresses = (parse.GetValue(addr) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (holders.Count == 0 || (addresses.Length != 0 && addresses.Length != holders.Count))
            {
                throw CliApp.UsageError("--from needs one or more peer IDs, and --addr one address for each of them (or none)");
            }
            var at = TrustCommands.ParseSince(parse.GetValue(version), TimeProvider.System);
            if (NodeLock.IsHeld(ctx.Home))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, "a node is running here: stop it first, restore runs its own");
            }
            var sources = new List<RestoreSource>();
            using (var db = TrustCommands.OpenDatabase(ctx))
            {
                for (var i = 0; i < holders.Count; i++)
                {
                    var address = addresses.Length > 0 ? addresses[i] : db.Trust.GetPeer(holders[i])?.Addresses.FirstOrDefault()?.Address
                        ?? throw CliApp.UsageError($"no address is known for {holders[i]}: give it with --addr");
                    sources.Add(new RestoreSource(holders[i], address));
                }
            }
            await using var runtime = await NodeRuntime.StartAsync(ctx, parse.GetValue(passphraseStdin), ct);
            var dir = parse.GetValue(to) is { } d ? Path.GetFullPath(d) : null;
            var result = await BackupRestore.RestoreAsync(runtime.Host, sources, dir, at, line => ctx.Err.WriteLine(TerminalText.Safe(line)), ct);
            if (ctx.Json)
            {
                PrintRestoreJson(ctx, result);
            }
            else
            {
                ctx.Out.WriteLine($"restored {Num(result.Files)} file(s), {Tui.Fmt.Size(result.Bytes)} ({Num(result.AlreadyThere)} already there), {Num(result.PeersRestored)} peer(s)");
            }
            if (result.Problems.Count > 0)
            {
                ctx.Err.WriteLine($"error: {result.Problems.Count} problem(s); first: {TerminalText.Safe(result.Problems[0])}");
                return CliApp.Failure;
            }
            return CliApp.Success;
        }, cancellationToken));
        return restore;
    }

    /// <summary>Asks the running node for a proof round now (through the database it watches) and waits for its outcome.</summary>
    private static async Task<int> CheckThroughNodeAsync(CliContext ctx, CancellationToken ct)
    {
        long asked;
        using (var db = TrustCommands.OpenDatabase(ctx))
        {
            asked = RequestCheck(db);
        }
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            using var db = TrustCommands.OpenDatabase(ctx);
            if (long.TryParse(db.Backup.GetState(BackupService.LastCheckKey), NumberStyles.None, CultureInfo.InvariantCulture, out var done) && done >= asked)
            {
                var holders = BackupStatusReport.Compute(db).SelectMany(s => s.Holders).DistinctBy(h => h.PeerId).ToList();
                if (ctx.Json)
                {
                    PrintCheckJson(ctx, holders);
                }
                else
                {
                    foreach (var h in holders)
                    {
                        ctx.Out.WriteLine(h.State == "failing" ? $"{Name(db, h.PeerId)}: FAILED: {h.Reason}" : $"{Name(db, h.PeerId)}: every proof passed");
                    }
                }
                return holders.All(h => h.State != "failing") ? CliApp.Success : CliApp.Failure;
            }
        }
    }

    /// <summary>A running node uploads: waits until every holder of the path is complete, or one fails.</summary>
    private static async Task<int> WaitForNodeAsync(CliContext ctx, string path, CancellationToken ct)
    {
        var started = DateTimeOffset.UtcNow;
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), ct);
            using var db = TrustCommands.OpenDatabase(ctx);
            var status = BackupStatusReport.Compute(db).FirstOrDefault(s => string.Equals(s.Path, path, StringComparison.Ordinal))
                ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{path} was removed while waiting");
            if (status.Holders.All(h => h.State == "complete") || (DateTimeOffset.UtcNow - started > TimeSpan.FromSeconds(15) && status.Holders.Any(h => h.State == "failing")))
            {
                return Finish(ctx, db, path, [.. status.Holders.Where(h => h.Reason is not null).Select(h => $"{h.PeerId}: {h.Reason}")]);
            }
        }
    }

    internal static int Finish(CliContext ctx, SecureMeshDatabase db, string path, List<string> errors)
    {
        var status = BackupStatusReport.Compute(db).First(s => string.Equals(s.Path, path, StringComparison.Ordinal));
        var complete = status.Holders.Count(h => h.State == "complete");
        if (ctx.Json)
        {
            ctx.WriteJson(new BackupOutcomeJson(path, complete, status.Copies, status.Holders.Select(h => new BackupOutcomeHolderJson(h.PeerId, h.State, h.Bytes, h.Reason))), CliJsonContext.Output.BackupOutcomeJson);
        }
        else
        {
            ctx.Out.WriteLine($"{path}: {Num(status.Files)} file(s), {Tui.Fmt.Size(status.Bytes)}; {complete} of {status.Holders.Count} holder(s) have everything");
        }
        if (complete >= status.Copies && errors.Count == 0)
        {
            return CliApp.Success;
        }
        ctx.Err.WriteLine($"error: {(errors.Count > 0 ? TerminalText.Safe(errors[0]) : $"only {complete} of {status.Copies} copies are complete")}");
        return CliApp.Failure;
    }

    /// <summary>
    /// Records a path to back up (what <c>backup add</c> does before it uploads; the terminal UI too): the path must exist,
    /// every holder be trusted, <paramref name="copies"/> (default: all holders) between 1 and the holders given.
    /// </summary>
    internal static (string Path, int Copies, string Keep) AddSet(SecureMeshDatabase db, string path, IReadOnlyList<PeerId> holders, int? copies, string? keep)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full) && !Directory.Exists(full))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{full} does not exist");
        }
        var distinct = holders.Distinct().ToList();
        if (distinct.Count == 0)
        {
            throw CliApp.UsageError("--to needs at least one peer ID");
        }
        var copyCount = copies ?? distinct.Count;
        if (copyCount < 1 || copyCount > distinct.Count)
        {
            throw CliApp.UsageError($"--copies must be between 1 and the {distinct.Count} holder(s) given");
        }
        string policy;
        try
        {
            policy = BackupKeepPolicy.Parse(keep);
        }
        catch (SecureMeshException e)
        {
            throw CliApp.UsageError(e.Message);
        }
        foreach (var holder in distinct)
        {
            RequireTrusted(db, holder);
        }
        db.Backup.AddSet(full, distinct, copyCount, policy);
        return (full, copyCount, policy);
    }

    /// <summary>Stops backing up a path (what <c>backup remove</c> does); its full path.</summary>
    internal static string RemoveSet(SecureMeshDatabase db, string path)
    {
        var full = Path.GetFullPath(path);
        if (!db.Backup.RemoveSet(full))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{full} is not backed up");
        }
        return full;
    }

    /// <summary>Asks the running node for a proof round now, through the database it watches; the time asked (Unix ms).</summary>
    internal static long RequestCheck(SecureMeshDatabase db)
    {
        var asked = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        db.Backup.SetState(BackupService.CheckRequestedKey, asked.ToString(CultureInfo.InvariantCulture));
        return asked;
    }

    private static void RequireTrusted(SecureMeshDatabase db, PeerId peer)
    {
        if (db.Trust.GetPeer(peer)?.State != PeerState.Trusted)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{peer} is not a trusted peer: trust it first ('securemesh peers add {peer} --trust')");
        }
    }

    /// <summary>Bytes, or with k, m, g or t (powers of 1024), as the node's size settings.</summary>
    internal static long ParseSize(string? text)
    {
        var size = SettingDefinition.ParseSize(text ?? "");
        return size >= 0 ? size : throw CliApp.UsageError($"not a size: '{text}' (use bytes or a whole number with k, m, g or t, e.g. 50g)");
    }

    /// <summary><c>backup check --json</c>, run here: each holder's outcome.</summary>
    internal static void PrintCheckJson(CliContext ctx, IReadOnlyList<HolderOutcome> outcomes) =>
        ctx.WriteJson(outcomes.Select(o => new BackupCheckJson(o.Holder.Text, o.Error is null, o.Error)), CliJsonContext.Output.BackupChecks);

    /// <summary><c>backup check --json</c> through the running node: each holder's state after its round.</summary>
    internal static void PrintCheckJson(CliContext ctx, IReadOnlyList<BackupHolderStatus> holders) =>
        ctx.WriteJson(holders.Select(h => new BackupCheckJson(h.PeerId, h.State != "failing", h.Reason)), CliJsonContext.Output.BackupChecks);

    /// <summary><c>restore --json</c>.</summary>
    internal static void PrintRestoreJson(CliContext ctx, RestoreResult result) =>
        ctx.WriteJson(new RestoreJson(result.CatalogSequence, result.Files, result.Bytes, result.AlreadyThere, result.PeersRestored, result.Problems), CliJsonContext.Output.RestoreJson);

    private static int Done<T>(CliContext ctx, T json, JsonTypeInfo<T> typeInfo, string text) => GroupCommands.Done(ctx, json, typeInfo, text);

    private static string Name(SecureMeshDatabase db, string peerId) =>
        PeerId.TryParse(peerId, out var id, out _) && db.Trust.GetPeer(id)?.Name is { } name ? $"{name} ({peerId})" : peerId;

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);
}
