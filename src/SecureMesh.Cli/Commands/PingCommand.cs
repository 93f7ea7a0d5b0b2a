using System.CommandLine;
using System.Globalization;
using System.Net;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary><c>securemesh ping MULTIADDR [--count N]</c>: libp2p ping of a trusted peer, through the running node when there is one.</summary>
internal static class PingCommand
{
    private const int MaxCount = 100;

    public static void Add(RootCommand root, CliConsole console)
    {
        var address = new Argument<string>("MULTIADDR") { Description = "The peer: a multiaddr ending in /p2p/PEERID, e.g. /ip4/192.0.2.7/tcp/4747/p2p/12D3KooW…" };
        var count = new Option<int>("--count") { Description = $"Pings to send, a second apart (1–{MaxCount})", DefaultValueFactory = _ => 3, HelpName = "N" };
        var passphraseStdin = new Option<bool>("--passphrase-stdin") { Description = "Read the identity's passphrase from the first line of standard input (when no node runs)" };
        var ping = new Command("ping", "libp2p ping (/ipfs/ping/1.0.0) of a trusted peer; prints each round-trip time (exit 0 when answered)") { address, count, passphraseStdin };
        ping.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var text = parse.GetValue(address)!;
            // A relayed address (…/p2p/RELAY/p2p-circuit/p2p/PEERID) is checked by the node that dials it.
            if (!PeerAddressFormat.IsCircuit(text))
            {
                if (!DialAddress.TryParse(text, out var target, out var error))
                {
                    throw CliApp.UsageError($"invalid address '{text}': {error}");
                }
                if (target.PeerId is null)
                {
                    throw CliApp.UsageError($"'{text}' names no peer: end it with /p2p/PEERID");
                }
            }
            var n = parse.GetValue(count);
            if (n is < 1 or > MaxCount)
            {
                throw CliApp.UsageError($"--count must be between 1 and {MaxCount}");
            }
            var result = NodeLock.IsHeld(ctx.Home)
                ? await PingThroughNodeAsync(ctx, text, n, ct)
                : await PingOneOffAsync(ctx, text, n, parse.GetValue(passphraseStdin), ct);
            if (ctx.Json)
            {
                PrintJson(ctx, result);
                return CliApp.Success;
            }
            foreach (var rtt in result.RttMs)
            {
                ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"pong from {result.PeerId}: {rtt:0.###} ms"));
            }
            return CliApp.Success;
        }, cancellationToken));
        root.Subcommands.Add(ping);
    }

    private static async Task<PingResult> PingThroughNodeAsync(CliContext ctx, string address, int count, CancellationToken ct)
    {
        using var client = new ControlClient(ctx.Home);
        return await client.PingAsync(address, count, ct);
    }

    /// <summary>No node runs: a node of our own, on a loopback port, for as long as the pings take.</summary>
    private static async Task<PingResult> PingOneOffAsync(CliContext ctx, string address, int count, bool passphraseStdin, CancellationToken ct)
    {
        if (!IdentityStore.Exists(ctx.Home))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Identity, $"no identity in {ctx.Home}: run 'securemesh init' first");
        }
        using var nodeLock = NodeLock.Acquire(ctx.Home);
        using var identity = IdentityStore.Load(ctx.Home, ctx.PassphraseSource(passphraseStdin));
        using var db = SecureMeshDatabase.Open(ctx.Home);
        using var loggerFactory = NodeRuntime.QuietLoggerFactory(ctx.Verbose);
        await using var host = await MeshHost.StartAsync(identity, db, new MeshHostOptions
        {
            Home = ctx.Home,
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            LoggerFactory = loggerFactory,
        }, ct);
        var (peer, rtts) = await host.Node.PingAddressAsync(address, count, ct);
        return new PingResult(peer.Text, address, [.. rtts.Select(r => r.TotalMilliseconds)]);
    }

    /// <summary><c>ping --json</c>.</summary>
    internal static void PrintJson(CliContext ctx, PingResult result) =>
        ctx.WriteJson(result, CliJsonContext.Output.PingResult);
}
