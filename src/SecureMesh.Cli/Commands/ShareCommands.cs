using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary><c>share add PATH [--with …] [--include-hidden] | share set PATH --with … | share list [--skipped] | share remove PATH</c>.</summary>
internal static class ShareCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var share = new Command("share", "Files and folders you share with trusted peers");
        var pathArg = new Argument<string>("PATH") { Description = "A file or folder (shared recursively)" };
        var passphraseStdin = new Option<bool>("--passphrase-stdin") { Description = "Read the identity's passphrase from the first line of standard input" };

        var with = new Option<string?>("--with")
        {
            Description = "Who may see it: 'all' (every trusted peer, the default for a new share), a group, or Peer IDs, separated by commas",
            HelpName = "all|GROUP|PEERID,...",
        };
        var includeHidden = new Option<bool>("--include-hidden")
        {
            Description = "Also share hidden entries (names starting with '.'); kept for this share until it is added again without it",
        };
        var add = new Command("add", "Share a file or folder: index what is new or changed and sign a manifest per file. Symbolic links, "
            + "special files, hidden entries and what a .smignore file excludes are skipped ('share list --skipped' names them)") { pathArg, with, passphraseStdin, includeHidden };
        add.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            // Checked before anything is shared: a typo in the audience shares nothing.
            var audience = parse.GetValue(with) is { } text ? ShareAudience.Parse(text) : null;
            if (NodeLock.IsHeld(ctx.Home))
            {
                // The running node indexes it and serves it at once.
                using var client = new ControlClient(ctx.Home);
                if (!ctx.Json)
                {
                    ctx.Err.WriteLine("indexing on the running node…");
                }
                var done = await client.AddShareAsync(Path.GetFullPath(parse.GetValue(pathArg)!), audience?.ToString(), parse.GetValue(includeHidden), ct);
                return PrintShareResult(ctx, done.Path, done.Files, done.Indexed, done.Unchanged, done.Removed, done.BytesHashed, null, done.Failed, done.Skipped);
            }
            if (!IdentityStore.Exists(ctx.Home))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Identity, $"no identity in {ctx.Home}: run 'securemesh init' first");
            }
            using var identity = IdentityStore.Load(ctx.Home, ctx.PassphraseSource(parse.GetValue(passphraseStdin)));
            using var db = TrustCommands.OpenDatabase(ctx);
            await using var shares = new ShareService(db, identity);
            var progress = ctx.Json ? null : new ProgressLine(ctx.Err);
            var watch = Stopwatch.StartNew();
            var result = await shares.AddAsync(parse.GetValue(pathArg)!, audience, parse.GetValue(includeHidden), progress is null ? null : p => progress.Update(
                $"indexing {Path.GetFileName(p.File)}  {Mib(p.BytesDone)} / {Mib(p.BytesTotal)} MiB  {Rate(p.BytesDone, watch.Elapsed)} MB/s"), ct);
            progress?.Done();
            return PrintShareResult(ctx, ShareFileSystem.Resolve(parse.GetValue(pathArg)!), result.Files, result.Indexed, result.Unchanged, result.Removed, result.BytesHashed, watch.Elapsed, result.Failed, result.Skipped);
        }, cancellationToken));
        share.Subcommands.Add(add);

        var setWith = new Option<string>("--with")
        {
            Description = "Who may see it: 'all' (every trusted peer), a group, or Peer IDs, separated by commas",
            HelpName = "all|GROUP|PEERID,...",
            Required = true,
        };
        var set = new Command("set", "Change who may see a shared path; peers that lose sight of it stop getting it at once") { pathArg, setWith };
        set.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var full = Path.GetFullPath(parse.GetValue(pathArg)!);
            var text = ShareAudience.Parse(parse.GetValue(setWith)).ToString();
            using var access = NodeAccess.Open(ctx);
            var result = await access.Groups.SetShareAudienceAsync(full, text, ct);
            if (ctx.Json)
            {
                ctx.WriteJson(result, CliJsonContext.Output.ShareAudienceInfo);
            }
            else
            {
                ctx.Out.WriteLine(result.Changed ? $"{result.Path} is now shared with {result.Audience}" : $"{result.Path} was already shared with {result.Audience}");
            }
            return CliApp.Success;
        }, cancellationToken));
        share.Subcommands.Add(set);

        var skippedOption = new Option<bool>("--skipped") { Description = "List what is not shared under the shared paths, and why" };
        var list = new Command("list", "List shared paths, who may see them, and the files indexed under them") { skippedOption };
        list.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            if (parse.GetValue(skippedOption))
            {
                return PrintSkipped(ctx, db.Catalog.ListSkipped());
            }
            var roots = db.Catalog.ListShares();
            var files = db.Catalog.List();
            var audiences = db.Groups.ListAudiences();
            string AudienceOf(string path) => audiences.TryGetValue(path, out var a) ? a.ToString() : "nobody";
            if (ctx.Json)
            {
                ctx.WriteJson(new ShareListJson(
                    roots.Select(r => r.Path),
                    roots.Select(r => new ShareAudienceJson(r.Path, AudienceOf(r.Path))),
                    files.Select(f => new SharedFileJson(f.Path, f.Name, f.Size, f.ContentId, f.ShareRoot, AudienceOf(f.ShareRoot))),
                    roots.Where(r => r.IncludeHidden).Select(r => r.Path)), CliJsonContext.Output.ShareListJson);
                return CliApp.Success;
            }
            if (roots.Count == 0)
            {
                ctx.Out.WriteLine("nothing is shared; add a file or folder with 'securemesh share add PATH'");
                return CliApp.Success;
            }
            foreach (var r in roots)
            {
                ctx.Out.WriteLine(r.IncludeHidden ? $"shared: {r.Path}  (with {AudienceOf(r.Path)}; hidden entries included)" : $"shared: {r.Path}  (with {AudienceOf(r.Path)})");
            }
            Table.Write(ctx.Out, ["CONTENT ID", "SIZE", "PATH"],
                files.Select(f => new[] { f.ContentId, f.Size.ToString("N0", CultureInfo.InvariantCulture), f.Path }));
            return CliApp.Success;
        }));
        share.Subcommands.Add(list);

        var remove = new Command("remove", "Stop sharing a path (the files stay on disk)") { pathArg };
        remove.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var full = Path.GetFullPath(parse.GetValue(pathArg)!);
            if (NodeLock.IsHeld(ctx.Home))
            {
                using var client = new ControlClient(ctx.Home);
                client.RemoveShareAsync(full, CancellationToken.None).GetAwaiter().GetResult();
            }
            else
            {
                using var db = TrustCommands.OpenDatabase(ctx);
                if (!db.Catalog.RemoveShare(full) && !db.Catalog.RemoveShare(ShareFileSystem.Resolve(full)))
                {
                    throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{full} is not shared ('securemesh share list' shows what is)");
                }
            }
            if (ctx.Json)
            {
                ctx.WriteJson(new PathRemovedJson(full, Removed: true), CliJsonContext.Output.PathRemovedJson);
            }
            else
            {
                ctx.Out.WriteLine($"no longer shared: {full}");
            }
            return CliApp.Success;
        }));
        share.Subcommands.Add(remove);
        root.Subcommands.Add(share);
    }

    private static int PrintSkipped(CliContext ctx, IReadOnlyList<SkippedEntry> skipped)
    {
        if (ctx.Json)
        {
            ctx.WriteJson(new SkippedListJson(skipped.Select(s => new SkippedJson(s.Path, s.Reason, s.ShareRoot))), CliJsonContext.Output.SkippedListJson);
            return CliApp.Success;
        }
        if (skipped.Count == 0)
        {
            ctx.Out.WriteLine("nothing under the shared paths was skipped");
            return CliApp.Success;
        }
        Table.Write(ctx.Out, ["PATH", "REASON"], skipped.Select(s => new[] { s.Path, s.Reason }));
        return CliApp.Success;
    }

    internal static int PrintShareResult(CliContext ctx, string path, int files, int indexed, int unchanged, int removed, long bytesHashed, TimeSpan? elapsed, IReadOnlyList<string> failed, int skipped)
    {
        if (ctx.Json)
        {
            ctx.WriteJson(new ShareResultJson(path, files, indexed, unchanged, removed, bytesHashed, elapsed?.TotalSeconds, failed, skipped), CliJsonContext.Output.ShareResultJson);
        }
        else
        {
            var timing = elapsed is { } e ? string.Create(CultureInfo.InvariantCulture, $" in {e.TotalSeconds:0.00}s, {Rate(bytesHashed, e)} MB/s") : string.Empty;
            var left = skipped == 0 ? string.Empty : string.Create(CultureInfo.InvariantCulture, $", {skipped} skipped ('securemesh share list --skipped' says why)");
            ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"shared {path}: {files} files, {indexed} indexed ({Mib(bytesHashed)} MiB{timing}), {unchanged} unchanged{left}"));
            foreach (var failure in failed)
            {
                ctx.Err.WriteLine($"warning: {failure}");
            }
        }
        return failed.Count == 0 ? CliApp.Success : CliApp.Failure;
    }

    internal static string Mib(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture);

    internal static string Rate(long bytes, TimeSpan elapsed) =>
        elapsed.TotalSeconds > 0 ? (bytes / 1e6 / elapsed.TotalSeconds).ToString("0", CultureInfo.InvariantCulture) : "-";
}

/// <summary>
/// One updating line on stderr, redrawn at most five times a second. On a terminal it is cut to the terminal's width, so
/// it never wraps: a wrapped line cannot be rewritten with a carriage return and would leave pieces (" /s") behind.
/// </summary>
internal sealed class ProgressLine(TextWriter err, Func<int>? columns = null)
{
    private readonly Func<int> _columns = columns ?? TerminalColumns;
    private long _last;
    private int _width;

    public void Update(string text, bool force = false)
    {
        var now = Stopwatch.GetTimestamp();
        if (!force && Stopwatch.GetElapsedTime(Interlocked.Read(ref _last), now) < TimeSpan.FromMilliseconds(200))
        {
            return;
        }
        Interlocked.Exchange(ref _last, now);
        lock (this)
        {
            // One column short of the edge: writing the last column makes some terminals wrap at once.
            var room = _columns() - 1;
            if (room > 0 && text.Length > room)
            {
                text = text[..Math.Max(0, room - 1)] + "…";
            }
            var pad = room > 0 ? Math.Min(_width, room) : _width;
            err.Write('\r' + text.PadRight(pad));
            _width = Math.Max(_width, text.Length);
            err.Flush();
        }
    }

    public void Done()
    {
        lock (this)
        {
            if (_width > 0)
            {
                err.WriteLine();
            }
        }
    }

    /// <summary>The terminal's width when stderr is one; 0 (no limit) when it is redirected or unknown.</summary>
    private static int TerminalColumns()
    {
        try
        {
            return Console.IsErrorRedirected ? 0 : Console.WindowWidth;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
