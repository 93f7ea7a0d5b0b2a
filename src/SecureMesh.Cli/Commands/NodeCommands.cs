using System.CommandLine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Node.Discovery;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary><c>run</c>: the node in the foreground, with its control API and LAN discovery; <c>status</c>.</summary>
internal static class NodeCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var listen = new Option<string?>("--listen") { Description = $"Address to listen on: HOST:PORT or a multiaddr such as /ip4/0.0.0.0/tcp/4747 (default: the 'listen' setting, else {NodeSettings.DefaultListen})", HelpName = "ADDR" };
        var passphraseStdin = new Option<bool>("--passphrase-stdin") { Description = "Read the identity's passphrase from the first line of standard input" };
        // For tests: beacons every N milliseconds instead of every 5 s.
        var beaconInterval = new Option<int?>("--beacon-interval-ms") { Hidden = true };
        var run = new Command("run", "Run the node in the foreground (Ctrl+C or SIGTERM stops it cleanly)") { listen, passphraseStdin, beaconInterval };
        run.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            if (parse.GetValue(listen) is { } given && !NodeSettings.TryParseListen(given, out _, out var listenError))
            {
                throw CliApp.UsageError($"--listen: {listenError}");
            }
            IdentityStore.EnsureDataDirectory(ctx.Home);
            if (!IdentityStore.Exists(ctx.Home))
            {
                // First start, as Syncthing does: make an identity so the node can run at once.
                using var fresh = NodeIdentity.Generate();
                IdentityStore.Save(ctx.Home, fresh, passphrase: null, force: false);
                ctx.Err.WriteLine($"created a new identity in {ctx.Home} (no passphrase; 'securemesh init --force --passphrase-stdin' replaces it with a protected one)");
            }
            using var nodeLock = NodeLock.Acquire(ctx.Home);
            using var identity = IdentityStore.Load(ctx.Home, ctx.PassphraseSource(parse.GetValue(passphraseStdin)));
            using var db = SecureMeshDatabase.Open(ctx.Home);
            var listenText = parse.GetValue(listen) ?? db.Config.Get(NodeSettings.Listen) ?? NodeSettings.DefaultListen;
            var endPoint = parse.GetValue(listen) is null ? NodeSettings.ParseEndPoint(listenText) : CliArgs.Check(() => NodeSettings.ParseEndPoint(listenText));
            using var loggerFactory = CreateLoggerFactory(ctx.Verbose);
            using var stop = StopSignals.Watch(ct);
            await using (var host = await MeshHost.StartAsync(identity, db, new MeshHostOptions
            {
                Home = ctx.Home,
                Listen = endPoint,
                LoggerFactory = loggerFactory,
                Serve = true,
                BeaconInterval = parse.GetValue(beaconInterval) is int ms and > 0 ? TimeSpan.FromMilliseconds(ms) : null,
            }, ct))
            {
                host.Resumed += handle => ctx.Out.WriteLine($"resuming download of {handle.ContentId}");
                ctx.Out.WriteLine($"SecureMesh node {identity.PeerId} ({identity.PeerId.Fingerprint}) listening on {host.Node.LocalEndPoint}; control socket {host.ControlSocketPath}; discovery {host.DiscoveryState}");
                ctx.Out.Flush();
                try
                {
                    await Task.Delay(Timeout.Infinite, stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
                ctx.Out.WriteLine("stopping…");
                ctx.Out.Flush();
            }
            ctx.Out.WriteLine("stopped");
            return CliApp.Success;
        }, cancellationToken));
        root.Subcommands.Add(run);

        var status = new Command("status", "Node state, connections and transfers ('node: not running' when no node runs here)");
        status.SetAction((parse, cancellationToken) => TrustCommands.Run(parse, console, async (ctx, control, ct) =>
        {
            var state = await control.GetStatusAsync(ct);
            if (ctx.Json)
            {
                ctx.WriteJson(state, CliJsonContext.Output.NodeStatus);
                return CliApp.Success;
            }
            PrintStatus(ctx, state);
            return CliApp.Success;
        }, cancellationToken));
        root.Subcommands.Add(status);
    }

    private static void PrintStatus(CliContext ctx, NodeStatus state)
    {
        var setting = state.Running ? string.Empty : " (setting)";
        ctx.Out.WriteLine(state.Running ? "node: running" : "node: not running");
        ctx.Out.WriteLine(state.PeerId is null
            ? "identity: none yet ('securemesh init' or 'securemesh run' creates one)"
            : $"peer id: {state.PeerId}\nfingerprint: {state.Fingerprint}");
        ctx.Out.WriteLine($"listen: {string.Join(", ", state.Listen)}{setting}");
        ctx.Out.WriteLine($"discovery: {state.Discovery}{setting}");
        foreach (var r in state.RefusingUs ?? [])
        {
            ctx.Out.WriteLine($"refusing us: {r.PeerId} ({TerminalText.Safe(r.Name ?? "-")}) since {TrustCommands.Time(r.LastRefusal)}, {r.Refusals} in a row; next attempt {TrustCommands.Time(r.NextAttempt)}");
        }
        if (!state.Running)
        {
            return;
        }
        ctx.Out.WriteLine($"port mapping: {TerminalText.Safe(state.PortMapping ?? "off")}");
        foreach (var r in state.Reachability ?? [])
        {
            ctx.Out.WriteLine($"address {r.Address} ({r.Source}{(r.Advertised ? ", advertised" : string.Empty)}): {r.State}");
        }
        ctx.Out.WriteLine($"connections: {state.Connections.Count}");
        if (state.Connections.Count > 0)
        {
            Table.Write(ctx.Out, ["PEER ID", "NAME", "PATH", "DIRECTION", "SINCE", "SENT", "RECEIVED", "SAS"],
                state.Connections.Select(c => new[]
                {
                    c.PeerId, c.Name ?? "-", Node.Network.ConnectionPaths.Describe(c.Path, c.Relay), c.Direction, TrustCommands.Time(c.Since),
                    c.BytesSent.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    c.BytesReceived.ToString(System.Globalization.CultureInfo.InvariantCulture), c.Sas,
                }));
        }
        foreach (var h in state.Handshakes ?? [])
        {
            // The peer hung up (perhaps it has not trusted this node yet): the words are still there to compare aloud.
            ctx.Out.WriteLine($"last handshake with {h.PeerId} ({TerminalText.Safe(h.Name ?? "-")}), {h.Direction}, {TrustCommands.Time(h.Time)}: SAS {h.Sas}; {TerminalText.Safe(h.Ended ?? "open")}");
        }
        ctx.Out.WriteLine($"transfers: {(state.Transfers.Count == 0 ? "none" : state.Transfers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture))}");
        foreach (var t in state.Transfers)
        {
            ctx.Out.WriteLine($"  {t.Direction} {TerminalText.Safe(t.Name ?? t.ContentId)} {t.State} {t.BytesDone}/{t.BytesTotal} bytes, {t.Peers} peers");
        }
    }

    internal static ILoggerFactory CreateLoggerFactory(bool verbose) => LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
        SafeConsoleFormatter.AddTo(builder);
        builder.AddFilter("Microsoft", LogLevel.Warning);
    });
}
