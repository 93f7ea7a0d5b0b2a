using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Node.Transfer;

namespace SecureMesh.HostilePeer;

/// <summary>
/// Floods every target with connections from many workers at once: TCP connections that never say a word (half-open;
/// by default 48 workers per target, more per source address than the target's per-address cap on handshakes in
/// progress admits), handshakes stalled after message 1 (the target has done its Diffie-Hellman work and waits),
/// garbage frames, and complete handshakes under fresh unknown identities followed by requests. The raw attacks
/// rotate over every source address but the last, so they must be borne by the caps and deadlines alone (they never
/// complete a handshake, so nothing penalises those addresses); the strangers come from the last address, which the
/// target may then penalise. Each worker waits <c>delay</c> between attempts, so the flood is steady rather than
/// bound only by the CPU of the test machine.
/// </summary>
internal sealed class HandshakeFlood(IReadOnlyList<IPEndPoint> targets, IReadOnlyList<IPAddress> sources, TimeSpan delay, int halfOpenWorkers, HostileStats stats)
{
    private const int StalledWorkers = 6;
    private const int GarbageWorkers = 2;
    private const int StrangerWorkers = 1;
    private static readonly TimeSpan Hold = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan AtOnce = TimeSpan.FromMilliseconds(100);

    public Task RunAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<IPAddress?> raw = sources.Count switch
        {
            0 => [null],
            1 => [sources[0]],
            _ => [.. sources.Take(sources.Count - 1)],
        };
        IReadOnlyList<IPAddress?> strangers = [sources.Count == 0 ? null : sources[^1]];
        var workers = new List<Task>();
        var n = 0;
        foreach (var target in targets)
        {
            for (var i = 0; i < halfOpenWorkers; i++)
            {
                workers.Add(Loop(target, raw, n++, HalfOpenAsync, cancellationToken));
            }
            for (var i = 0; i < StalledWorkers; i++)
            {
                workers.Add(Loop(target, raw, n++, StalledAsync, cancellationToken));
            }
            for (var i = 0; i < GarbageWorkers; i++)
            {
                workers.Add(Loop(target, raw, n++, GarbageAsync, cancellationToken));
            }
            for (var i = 0; i < StrangerWorkers; i++)
            {
                workers.Add(Loop(target, strangers, n++, StrangerAsync, cancellationToken));
            }
        }
        return Task.WhenAll(workers);
    }

    private Task Loop(IPEndPoint target, IReadOnlyList<IPAddress?> from, int worker, Func<Socket, CancellationToken, Task> attack, CancellationToken cancellationToken) => Task.Run(async () =>
    {
        for (var attempt = worker; !cancellationToken.IsCancellationRequested; attempt++)
        {
            try
            {
                using var socket = await ConnectAsync(target, from[attempt % from.Count], cancellationToken);
                if (socket is not null)
                {
                    Interlocked.Increment(ref stats.FloodConnections);
                    await attack(socket, cancellationToken);
                }
                await Task.Delay(delay, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is SocketException or IOException or SecureMeshException or OperationCanceledException or ObjectDisposedException)
            {
                // The target cut us off mid-attack: go again.
            }
        }
    }, CancellationToken.None);

    private async Task<Socket?> ConnectAsync(IPEndPoint target, IPAddress? source, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (source is not null)
            {
                socket.Bind(new IPEndPoint(source, 0));
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            await socket.ConnectAsync(target, timeout.Token);
            return socket;
        }
        catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            socket.Dispose();
            Interlocked.Increment(ref stats.ConnectFailures);
            // Not listening yet (or gone): no point in spinning.
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
            return null;
        }
    }

    /// <summary>Connect and say nothing, until the target gives up on us.</summary>
    private async Task HalfOpenAsync(Socket socket, CancellationToken cancellationToken) =>
        await WaitForCloseAsync(socket, cancellationToken);

    /// <summary>Choose <c>/noise</c> with multistream-select, send a valid first handshake message, never send the third.</summary>
    private async Task StalledAsync(Socket socket, CancellationToken cancellationToken)
    {
        var first = new byte[2 + 32];
        BinaryPrimitives.WriteUInt16BigEndian(first, 32);
        RandomNumberGenerator.Fill(first.AsSpan(2));
        byte[] negotiation = [19, .. "/multistream/1.0.0\n"u8, 7, .. "/noise\n"u8];
        await socket.SendAsync(negotiation, SocketFlags.None, cancellationToken);
        await socket.SendAsync(first, SocketFlags.None, cancellationToken);
        await WaitForCloseAsync(socket, cancellationToken);
    }

    /// <summary>Frames no handshake can accept: a lying length, an empty frame, a short key, a wall of noise.</summary>
    private async Task GarbageAsync(Socket socket, CancellationToken cancellationToken)
    {
        byte[] bytes = RandomNumberGenerator.GetInt32(4) switch
        {
            0 => [0xFF, 0xFF, .. RandomNumberGenerator.GetBytes(1024)],
            1 => [0x00, 0x00],
            2 => [0x00, 0x05, .. RandomNumberGenerator.GetBytes(5)],
            _ => RandomNumberGenerator.GetBytes(64 * 1024),
        };
        await socket.SendAsync(bytes, SocketFlags.None, cancellationToken);
        Interlocked.Increment(ref stats.GarbageSent);
        await WaitForCloseAsync(socket, cancellationToken);
    }

    /// <summary>A complete handshake under a fresh identity nobody trusts, then a hello and a search: both must go unanswered.</summary>
    private async Task StrangerAsync(Socket socket, CancellationToken cancellationToken)
    {
        using var stranger = NodeIdentity.Generate();
        var stream = new NetworkStream(socket, ownsSocket: false);
        await using var connection = await new Upgrader(stranger).UpgradeOutboundAsync(stream, null, cancellationToken);
        Interlocked.Increment(ref stats.StrangerHandshakes);
        await using var muxer = new YamuxSession(connection.Stream, isClient: true);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        // The transfer stream, a hello and a search: a stranger must get nothing, not even the protocol's acceptance.
        var transfer = await muxer.OpenStreamAsync(timeout.Token);
        await MultistreamSelect.SelectAsync(transfer, [TransferProtocol.Transfer], timeout.Token);
        Interlocked.Increment(ref stats.StrangerAnswers);
        await using var messages = new MessageStream(transfer);
        await messages.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, [], WireLimits.DefaultMaxMessageSize)), cancellationToken);
        await messages.SendAsync(WireCodec.Encode(new SearchRequest(1, "a", 10)), cancellationToken);
        while (await messages.ReceiveAsync(timeout.Token) is { } answer)
        {
            answer.Dispose();
            Interlocked.Increment(ref stats.StrangerAnswers);
        }
    }

    /// <summary>Reads (and drops) whatever comes until the target closes, or <see cref="Hold"/> passes; counts how the target ended it.</summary>
    private async Task WaitForCloseAsync(Socket socket, CancellationToken cancellationToken)
    {
        var started = Environment.TickCount64;
        var buffer = new byte[4096];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Hold);
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
            {
            }
        }
        catch (SocketException)
        {
            // Reset by the target: closed all the same.
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The target kept us: nothing to count.
            return;
        }
        if (TimeSpan.FromMilliseconds(Environment.TickCount64 - started) < AtOnce)
        {
            Interlocked.Increment(ref stats.ClosedAtOnce);
        }
        else
        {
            Interlocked.Increment(ref stats.CutAfterWaiting);
        }
    }
}
