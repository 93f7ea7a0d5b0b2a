using System.CommandLine;
using System.Globalization;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Cli.Commands;

/// <summary><c>search TERMS...</c> and <c>get CONTENT_ID [--out DIR]</c>, running a node for as long as they need one.</summary>
internal static class TransferCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var passphraseStdin = new Option<bool>("--passphrase-stdin") { Description = "Read the identity's passphrase from the first line of standard input" };

        var terms = new Argument<string[]>("TERMS") { Description = "Words that must all appear in the name", Arity = ArgumentArity.OneOrMore };
        var search = new Command("search", "Search the catalogs of connected trusted peers") { terms, passphraseStdin };
        search.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            if (NodeLock.IsHeld(ctx.Home))
            {
                using var client = new ControlClient(ctx.Home);
                var found = await client.SearchAsync(string.Join(' ', parse.GetValue(terms) ?? []), ct);
                return PrintSearch(ctx, found.Select(h => (h.ContentId, h.Name, h.Size, h.Peers)).ToList(), null);
            }
            await using var runtime = await NodeRuntime.StartAsync(ctx, parse.GetValue(passphraseStdin), ct);
            var peers = runtime.Transfer.OpenSessions().Count;
            if (peers == 0 && !ctx.Json)
            {
                ctx.Err.WriteLine("warning: no trusted peer is reachable (add addresses with 'securemesh peers add PEERID --addr HOST:PORT --trust')");
            }
            var hits = await runtime.Transfer.SearchAsync(string.Join(' ', parse.GetValue(terms) ?? []), ct);
            return PrintSearch(ctx, hits.Select(h => (h.ContentId, h.Name, h.Size, h.Peers)).ToList(), peers);
        }, cancellationToken));
        root.Subcommands.Add(search);

        var idArg = new Argument<string>("CONTENT_ID") { Description = "The content ID (b3:…) from 'search'" };
        var outOption = new Option<string?>("--out") { Description = "Release into this folder instead of the download-dir setting", HelpName = "DIR" };
        var get = new Command("get", "Download from every trusted peer that has it, into quarantine, then release per policy (exit 3: held)") { idArg, outOption, passphraseStdin };
        get.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var id = ContentId.Parse(parse.GetValue(idArg));
            var outDir = parse.GetValue(outOption);
            if (NodeLock.IsHeld(ctx.Home))
            {
                return await GetThroughNodeAsync(ctx, id, outDir, ct);
            }
            await using var runtime = await NodeRuntime.StartAsync(ctx, parse.GetValue(passphraseStdin), ct);
            if (runtime.Transfer.OpenSessions().Count == 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network,
                    "no trusted peer is reachable (add addresses with 'securemesh peers add PEERID --addr HOST:PORT --trust')");
            }
            var handle = runtime.Transfer.StartDownload(id, outDir is null ? null : Path.GetFullPath(outDir));
            using var registration = ct.Register(handle.Cancel);
            return await FollowAsync(ctx, id, TransferControlService.ToInfo(handle), _ => Task.FromResult(TransferControlService.ToInfo(handle)), handle.Completion, ct);
        }, cancellationToken));
        root.Subcommands.Add(get);
    }

    private static int PrintSearch(CliContext ctx, IReadOnlyList<(string ContentId, string Name, long Size, IReadOnlyList<string> Peers)> hits, int? peers)
    {
        if (ctx.Json)
        {
            ctx.WriteJson(hits.Select(h => new { contentId = h.ContentId, name = h.Name, size = h.Size, peers = h.Peers }));
            return CliApp.Success;
        }
        if (hits.Count == 0)
        {
            ctx.Out.WriteLine(peers is { } n ? $"no results from {n} peer(s)" : "no results");
            return CliApp.Success;
        }
        Table.Write(ctx.Out, ["CONTENT ID", "SIZE", "NAME", "PEERS"],
            hits.Select(h => new[] { h.ContentId, h.Size.ToString("N0", CultureInfo.InvariantCulture), h.Name, string.Join(",", h.Peers.Select(Short)) }));
        return CliApp.Success;
    }

    /// <summary><c>get</c> on a running node: start the download there and follow its progress through the control API.</summary>
    private static async Task<int> GetThroughNodeAsync(CliContext ctx, ContentId id, string? outDir, CancellationToken ct)
    {
        using var client = new ControlClient(ctx.Home);
        var started = await client.StartDownloadAsync(id.Text, outDir is null ? null : Path.GetFullPath(outDir), ct);
        using var registration = ct.Register(() => client.CancelDownloadAsync(id.Text, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default));
        // The node answers when the download ends or after one progress interval, whichever is first.
        return await FollowAsync(ctx, id, started, c => client.WaitDownloadAsync(id.Text, ProgressInterval, c), null, ct);
    }

    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// Shows a download's progress until it ends, then its outcome: exit 0 released, 3 held, 1 failed.
    /// <paramref name="info"/> is its state at the start; <paramref name="completion"/>, when the download runs in this
    /// process, ends each wait as soon as it finishes; otherwise <paramref name="poll"/> does the waiting: it answers at
    /// the end or after one progress interval.
    /// </summary>
    private static async Task<int> FollowAsync(CliContext ctx, ContentId id, DownloadInfo info, Func<CancellationToken, Task<DownloadInfo>> poll, Task? completion, CancellationToken ct)
    {
        var line = ctx.Json ? null : new ProgressLine(ctx.Err);
        while (!info.Finished)
        {
            if (completion is not null)
            {
                await Task.WhenAny(Task.Delay(ProgressInterval, ct), completion);
            }
            ct.ThrowIfCancellationRequested();
            info = await poll(ct);
            if (line is not null)
            {
                var percent = info.BytesTotal > 0 ? 100.0 * info.BytesDone / info.BytesTotal : 0;
                line.Update(string.Create(CultureInfo.InvariantCulture,
                    $"{info.State} {TerminalText.Safe(info.Name ?? id.Text)}  {percent:0.0}%  {ShareCommands.Mib(info.BytesDone)} / {ShareCommands.Mib(info.BytesTotal)} MiB  {info.BytesPerSecond / 1048576:0.0} MiB/s  {info.Peers} peer(s)"), force: true);
            }
        }
        line?.Done();
        if (ctx.Json)
        {
            ctx.WriteJson(new GetOutput(id.Text, info.Name, info.BytesTotal, info.State, info.Path, info.Reason,
                info.QuarantineId, info.ChunkRequests, info.ResumedChunks, info.BytesPerSecond));
        }
        switch (info.State)
        {
            case "released":
                if (!ctx.Json)
                {
                    ctx.Out.WriteLine($"released to {TerminalText.Safe(info.Path)}");
                }
                return CliApp.Success;
            case "held":
                if (!ctx.Json)
                {
                    ctx.Out.WriteLine($"held in quarantine (item {info.QuarantineId}): {TerminalText.Safe(info.Reason)}");
                }
                ctx.Err.WriteLine($"held: {TerminalText.Safe(info.Reason)}");
                return CliApp.Held;
            default:
                throw new SecureMeshException(SecureMeshErrorKind.Network, $"download failed: {info.Reason}");
        }
    }

    private static string Short(string peerId) => peerId.Length > 16 ? peerId[..8] + "…" + peerId[^6..] : peerId;
}
