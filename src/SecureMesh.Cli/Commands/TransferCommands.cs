using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using SecureMesh.Cli.Json;
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
        var detach = new Option<bool>("--detach")
        {
            Description = "With a running node: on Ctrl+C leave the download running in the node instead of cancelling it (without a terminal to ask on, cancelling is the default)",
        };
        var get = new Command("get", "Download from every trusted peer that has it, into quarantine, then release per policy (exit 3: held)") { idArg, outOption, passphraseStdin, detach };
        get.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var id = CliArgs.Content(parse.GetValue(idArg));
            var outDir = parse.GetValue(outOption);
            if (NodeLock.IsHeld(ctx.Home))
            {
                return await GetThroughNodeAsync(ctx, id, outDir, parse.GetValue(detach), ct);
            }
            await using var runtime = await NodeRuntime.StartAsync(ctx, parse.GetValue(passphraseStdin), ct);
            if (runtime.Transfer.OpenSessions().Count == 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network,
                    "no trusted peer is reachable (add addresses with 'securemesh peers add PEERID --addr HOST:PORT --trust')");
            }
            var handle = runtime.Transfer.StartDownload(id, outDir is null ? null : Path.GetFullPath(outDir));
            using var registration = ct.Register(handle.Cancel);
            return await FollowAsync(ctx, id, NodeControl.Describe(handle), _ => Task.FromResult(NodeControl.Describe(handle)), handle.Completion, ct);
        }, cancellationToken));
        root.Subcommands.Add(get);
        root.Subcommands.Add(TransfersCommand(console));
    }

    /// <summary><c>transfers list | cancel ID</c>: the downloads a running node holds (ID is the content ID).</summary>
    private static Command TransfersCommand(CliConsole console)
    {
        var transfers = new Command("transfers", "Downloads running in the node: list them, cancel one");
        var list = new Command("list", "List the node's downloads (running and finished since it started)");
        list.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            IReadOnlyList<DownloadInfo> downloads = [];
            if (NodeLock.IsHeld(ctx.Home))
            {
                using var client = new ControlClient(ctx.Home);
                downloads = await client.ListDownloadsAsync(ct);
            }
            if (ctx.Json)
            {
                PrintDownloadsJson(ctx, downloads);
                return CliApp.Success;
            }
            if (downloads.Count == 0)
            {
                ctx.Out.WriteLine(NodeLock.IsHeld(ctx.Home) ? "no transfers" : "no transfers (no node is running here)");
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["ID", "STATE", "DONE", "SIZE", "PEERS", "NAME"],
                downloads.Select(d => new[]
                {
                    d.ContentId, d.State,
                    d.BytesTotal > 0 ? (100.0 * d.BytesDone / d.BytesTotal).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-",
                    d.BytesTotal.ToString("N0", CultureInfo.InvariantCulture), d.Peers.ToString(CultureInfo.InvariantCulture), d.Name ?? "-",
                }));
            return CliApp.Success;
        }, cancellationToken));
        transfers.Subcommands.Add(list);

        var idArg = new Argument<string>("ID") { Description = "The transfer's ID (its content ID, b3:…), as 'transfers list' shows" };
        var cancel = new Command("cancel", "Cancel a download running in the node (the chunks verified so far stay for a later 'get')") { idArg };
        cancel.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var id = CliArgs.Content(parse.GetValue(idArg));
            if (!NodeLock.IsHeld(ctx.Home))
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no node is running in {ctx.Home}, so no download of {id} is running");
            }
            using var client = new ControlClient(ctx.Home);
            await client.CancelDownloadAsync(id.Text, ct);
            if (ctx.Json)
            {
                PrintCancelledJson(ctx, id.Text);
            }
            else
            {
                ctx.Out.WriteLine($"cancelled the download of {id}");
            }
            return CliApp.Success;
        }, cancellationToken));
        transfers.Subcommands.Add(cancel);
        return transfers;
    }

    /// <summary><c>transfers list --json</c>.</summary>
    internal static void PrintDownloadsJson(CliContext ctx, IReadOnlyList<DownloadInfo> downloads) =>
        ctx.WriteJson(downloads.Select(d => new TransferJson(d.ContentId, d.ContentId, d.Name, d.State, d.BytesDone, d.BytesTotal,
            d.BytesPerSecond, d.Peers, d.Finished, d.Reason, d.Path, d.QuarantineId)), CliJsonContext.Output.Transfers);

    /// <summary><c>transfers cancel ID --json</c>.</summary>
    internal static void PrintCancelledJson(CliContext ctx, string id) => ctx.WriteJson(new TransferCancelledJson(id, Cancelled: true), CliJsonContext.Output.TransferCancelledJson);

    internal static int PrintSearch(CliContext ctx, IReadOnlyList<(string ContentId, string Name, long Size, IReadOnlyList<string> Peers)> hits, int? peers)
    {
        if (ctx.Json)
        {
            ctx.WriteJson(hits.Select(h => new SearchHitJson(h.ContentId, h.Name, h.Size, h.Peers)), CliJsonContext.Output.SearchHits);
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

    /// <summary>
    /// <c>get</c> on a running node: start the download there and follow its progress through the control API. Ctrl+C
    /// asks on a terminal whether to cancel the download or leave it running in the node; without a terminal
    /// <paramref name="detach"/> leaves it, else it is cancelled.
    /// </summary>
    private static async Task<int> GetThroughNodeAsync(CliContext ctx, ContentId id, string? outDir, bool detach, CancellationToken ct)
    {
        using var client = new ControlClient(ctx.Home);
        var started = await client.StartDownloadAsync(id.Text, outDir is null ? null : Path.GetFullPath(outDir), ct);
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var again = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            if (interrupted.IsCancellationRequested)
            {
                again.TrySetResult();
            }
            else
            {
                interrupted.Cancel();
            }
        });
        try
        {
            // The node answers when the download ends or after one progress interval, whichever is first.
            return await FollowAsync(ctx, id, started, c => client.WaitDownloadAsync(id.Text, ProgressInterval, c), null, interrupted.Token);
        }
        catch (OperationCanceledException) when (interrupted.IsCancellationRequested)
        {
            ctx.Err.WriteLine();
            var leave = detach || (ctx.Console.Interactive && await AskLeaveRunningAsync(ctx, again.Task));
            if (leave)
            {
                ctx.Err.WriteLine($"the download keeps running in the node: 'securemesh transfers list' shows it, 'securemesh transfers cancel {id}' stops it");
                return CliApp.Success;
            }
            try
            {
                await client.CancelDownloadAsync(id.Text, CancellationToken.None);
            }
            catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.NotFound)
            {
                // It ended between the Ctrl+C and the cancel: report how.
                var ended = await client.GetDownloadAsync(id.Text, CancellationToken.None);
                ctx.Err.WriteLine($"the download had already ended: {ended.State}");
                return ended.State switch { "released" => CliApp.Success, "held" => CliApp.Held, _ => CliApp.Failure };
            }
            ctx.Err.WriteLine($"download cancelled (the chunks verified so far are kept: 'securemesh get {id}' resumes)");
            return 130;
        }
    }

    /// <summary>
    /// Asks on the terminal whether to leave the download running (l) or cancel it (c, the default, also on end of
    /// input or a second Ctrl+C, <paramref name="again"/>).
    /// </summary>
    private static async Task<bool> AskLeaveRunningAsync(CliContext ctx, Task again)
    {
        ctx.Err.Write("Ctrl+C: [c]ancel the download, or [l]eave it running in the node? [c/l] ");
        ctx.Err.Flush();
        var read = Task.Run(ctx.Console.In.ReadLine);
        if (await Task.WhenAny(read, again) != read)
        {
            ctx.Err.WriteLine();
            return false;
        }
        var answer = await read;
        return answer is not null && answer.Trim().StartsWith('l');
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
                info.QuarantineId, info.ChunkRequests, info.ResumedChunks, info.BytesPerSecond).WriteTo);
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
                // The reason once: on stdout for a person, on stderr beside the JSON.
                if (ctx.Json)
                {
                    ctx.Err.WriteLine($"held in quarantine (item {info.QuarantineId}): {TerminalText.Safe(info.Reason)}");
                }
                else
                {
                    ctx.Out.WriteLine($"held in quarantine (item {info.QuarantineId}): {TerminalText.Safe(info.Reason)}");
                }
                return CliApp.Held;
            default:
                throw new SecureMeshException(SecureMeshErrorKind.Network, $"download failed: {info.Reason}");
        }
    }

    private static string Short(string peerId) => peerId.Length > 16 ? peerId[..8] + "…" + peerId[^6..] : peerId;
}
