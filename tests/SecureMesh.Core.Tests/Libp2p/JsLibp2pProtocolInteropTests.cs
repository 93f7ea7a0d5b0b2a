using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Identify;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Ping;
using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// Ping and identify against a stock js-libp2p 3.x node over the whole stack: TCP, multistream-select, Noise, yamux
/// (chosen in the handshake), then multistream-select per stream. The node side here is a minimal host made of the
/// components (the real Host lives in SecureMesh.Node): every inbound stream negotiates identify or ping and is served.
/// </summary>
public sealed class JsLibp2pProtocolInteropTests : IDisposable
{
    private static readonly string[] Served = [IdentifyService.ProtocolId, IdentifyService.PushProtocolId, PingService.ProtocolId];

    private readonly NodeIdentity _me = NodeIdentity.Generate();
    private readonly IdentifyService _identify = new();
    private readonly PingService _ping = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<IdentifyMessage> _pushed = new();

    private static CancellationToken Patience => new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token;

    public void Dispose() => _me.Dispose();

    [Fact]
    public async Task A_js_node_pings_and_identifies_us_with_100_concurrent_pings_on_one_connection()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        await using var js = new JsLibp2pNode("dial", $"/ip4/127.0.0.1/tcp/{port}/p2p/{_me.PeerId}", "--ping", "3", "--identify", "--concurrent-pings", "100");

        using var socket = await listener.AcceptAsync(Patience);
        await using var connection = await new Upgrader(_me).UpgradeInboundAsync(new NetworkStream(socket, ownsSocket: true), Patience);
        await using var session = new YamuxSession(connection.Stream, isClient: false);
        var served = ServeAsync(session, connection.RemotePeerId);

        // Meanwhile we identify the js node on the same connection.
        var theirs = await IdentifyAsync(session, connection.RemotePeerId);
        Assert.StartsWith("js-libp2p/", theirs.AgentVersion, StringComparison.Ordinal);
        Assert.Contains(PingService.ProtocolId, theirs.Protocols);

        var exit = await js.WaitForExitAsync();
        Assert.True(exit == 0, "js-libp2p failed:\n" + js.Output);
        Assert.Equal(3, js.Events("ping").Count);
        var identified = await js.WaitForEventAsync("identify");
        Assert.StartsWith("securemesh/", identified.GetProperty("agentVersion").GetString(), StringComparison.Ordinal);
        Assert.Equal(IdentifyService.DefaultProtocolVersion, identified.GetProperty("protocolVersion").GetString());
        Assert.Equal(_me.PeerId.Text, identified.GetProperty("peerId").GetString());
        Assert.Contains(PingService.ProtocolId, identified.GetProperty("protocols").EnumerateArray().Select(p => p.GetString()));
        var concurrent = await js.WaitForEventAsync("concurrent-pings");
        Assert.Equal(100, concurrent.GetProperty("ok").GetInt32());
        Assert.Equal(1, concurrent.GetProperty("connections").GetInt32());
        Assert.True(await served >= 103, "every ping stream was served");
    }

    [Fact]
    public async Task We_ping_and_identify_a_js_node_and_it_identifies_us()
    {
        var (js, peerId, _, port) = await JsLibp2pNode.ListenAsync();
        await using (js)
        {
            var (connection, session) = await DialAsync(port, peerId);
            await using var _ = connection;
            await using var __ = session;

            await using (var stream = await session.OpenStreamAsync(Patience))
            {
                Assert.Equal(PingService.ProtocolId, await MultistreamSelect.SelectAsync(stream, [PingService.ProtocolId], Patience));
                for (var i = 0; i < 3; i++)
                {
                    Assert.True(await _ping.PingAsync(stream, Patience) > TimeSpan.Zero);
                }
                await stream.CloseWriteAsync(Patience);
            }

            var theirs = await IdentifyAsync(session, connection.RemotePeerId);
            Assert.StartsWith("js-libp2p/", theirs.AgentVersion, StringComparison.Ordinal);
            Assert.Equal(IdentifyService.DefaultProtocolVersion, theirs.ProtocolVersion);
            Assert.NotEmpty(theirs.ListenAddrs);

            var identified = await js.WaitForEventAsync("identify", e => e.GetProperty("peerId").GetString() == _me.PeerId.Text);
            Assert.StartsWith("securemesh/", identified.GetProperty("agentVersion").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Identify_push_travels_both_ways_between_a_js_node_and_us()
    {
        const string Theirs = "/securemesh-test/js-later/1.0.0";
        const string Ours = "/securemesh-test/pushed/1.0.0";
        var (js, peerId, _, port) = await JsLibp2pNode.ListenAsync("--handle-after-identify", Theirs);
        await using (js)
        {
            var (connection, session) = await DialAsync(port, peerId);
            await using var _ = connection;
            await using var __ = session;

            // js identifies us (we list push), then starts serving one more protocol and pushes its new list to us.
            await js.WaitForEventAsync("handling");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            IdentifyMessage? pushed;
            while ((pushed = _pushed.FirstOrDefault(m => m.Protocols.Contains(Theirs))) is null && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
            Assert.True(pushed is not null, "js pushed no identify naming its new protocol:\n" + js.Output);
            Assert.Contains(IdentifyService.PushProtocolId, pushed.Protocols);
            Assert.NotEmpty(pushed.ListenAddrs);

            // We push ours: js applies it as an identify of us that names the new protocol.
            await using (var stream = await session.OpenStreamAsync(Patience))
            {
                Assert.Equal(IdentifyService.PushProtocolId, await MultistreamSelect.SelectAsync(stream, [IdentifyService.PushProtocolId], Patience));
                await _identify.PushAsync(stream, IdentifyService.Describe(_me, [], [.. Served, Ours], null), Patience);
                await stream.CloseWriteAsync(Patience);
            }
            var applied = await js.WaitForEventAsync("identify", e => e.GetProperty("peerId").GetString() == _me.PeerId.Text
                && e.GetProperty("protocols").EnumerateArray().Any(p => p.GetString() == Ours));
            Assert.StartsWith("securemesh/", applied.GetProperty("agentVersion").GetString(), StringComparison.Ordinal);
        }
    }

    /// <summary>Dials the js node, upgrades, starts yamux and serves its streams.</summary>
    private async Task<(UpgradedConnection Connection, YamuxSession Session)> DialAsync(int port, string peerId)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), Patience);
        var connection = await new Upgrader(_me).UpgradeOutboundAsync(new NetworkStream(socket, ownsSocket: true), PeerId.Parse(peerId), Patience);
        var session = new YamuxSession(connection.Stream, isClient: true);
        _ = ServeAsync(session, connection.RemotePeerId);
        return (connection, session);
    }

    private async Task<IdentifyMessage> IdentifyAsync(YamuxSession session, PeerId remote)
    {
        await using var stream = await session.OpenStreamAsync(Patience);
        Assert.Equal(IdentifyService.ProtocolId, await MultistreamSelect.SelectAsync(stream, [IdentifyService.ProtocolId], Patience));
        await stream.CloseWriteAsync(Patience);
        return await _identify.RequestAsync(stream, remote, Patience);
    }

    /// <summary>Serves identify and ping on every inbound stream until the session ends; returns the streams served.</summary>
    private async Task<int> ServeAsync(YamuxSession session, PeerId remote)
    {
        var served = 0;
        var handlers = new List<Task>();
        try
        {
            while (true)
            {
                var stream = await session.AcceptStreamAsync(Patience);
                handlers.Add(Task.Run(async () =>
                {
                    await using (stream)
                    {
                        var protocol = await MultistreamSelect.NegotiateAsync(stream, Served, Patience);
                        if (protocol == PingService.ProtocolId)
                        {
                            await _ping.ServeAsync(stream, Patience);
                        }
                        else if (protocol == IdentifyService.PushProtocolId)
                        {
                            _pushed.Enqueue(await _identify.ReceivePushAsync(stream, remote, Patience));
                        }
                        else
                        {
                            await _identify.RespondAsync(stream, IdentifyService.Describe(_me, [], Served, null), Patience);
                        }
                        await stream.CloseWriteAsync(Patience);
                        Interlocked.Increment(ref served);
                    }
                }));
            }
        }
        catch (Exception e) when (e is SecureMeshException or OperationCanceledException or ObjectDisposedException)
        {
            // The session ended.
        }
        await Task.WhenAll(handlers.Select(h => h.ContinueWith(_ => { }, TaskScheduler.Default)));
        return served;
    }
}
