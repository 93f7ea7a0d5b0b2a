using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using static SecureMesh.Core.Tests.Libp2p.YamuxKit;

namespace SecureMesh.Core.Tests.Libp2p;

/// <summary>
/// Bulk data through our yamux on our Noise stream against a stock js-libp2p node (tests/interop/libp2p-node.mjs):
/// our data frames share a Noise frame with their header and fill the rest exactly, and js's frames, cut its own way,
/// are read straight into our readers' buffers. js-libp2p's ping handler sends back whatever a stream carries until
/// the stream ends, so a ping stream serves as an echo.
/// </summary>
public sealed class YamuxNoiseJsInteropTests : IDisposable
{
    private readonly NodeIdentity _me = NodeIdentity.Generate();

    public void Dispose() => _me.Dispose();

    [Fact]
    public async Task Megabytes_in_writes_of_every_size_come_back_intact_through_a_js_node()
    {
        var (js, peerId, _, port) = await JsLibp2pNode.ListenAsync();
        await using (js)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
            var connection = await new Upgrader(_me).UpgradeOutboundAsync(new NetworkStream(socket, ownsSocket: true), PeerId.Parse(peerId), cts.Token);
            await using var session = new YamuxSession(connection.Stream, isClient: true);
            var stream = await session.OpenStreamAsync(cts.Token);
            Assert.Equal("/ipfs/ping/1.0.0", await MultistreamSelect.SelectAsync(stream, ["/ipfs/ping/1.0.0"], cts.Token));

            // 65,536 and 262,144 bytes take the header-sharing path; 65,519 is whole Noise frames; the rest are odd.
            int[] sizes = [65_536, 1, 65_519, 262_144, 100_000, 8_193, 131_072, 300_001, 65_536, 70_000];
            var payload = RandomBytes(sizes.Sum() * 2, 11);
            var send = Task.Run(async () =>
            {
                var sent = 0;
                for (var round = 0; round < 2; round++)
                {
                    foreach (var size in sizes)
                    {
                        await stream.WriteAsync(payload.AsMemory(sent, size), cts.Token);
                        sent += size;
                    }
                }
                await stream.CloseWriteAsync(cts.Token);
            }, cts.Token);
            using var echoed = new MemoryStream();
            var buffer = new byte[65_536];
            int n;
            while ((n = await stream.ReadAsync(buffer, cts.Token)) > 0)
            {
                echoed.Write(buffer, 0, n);
            }
            await send;

            Assert.Equal(payload.Length, (int)echoed.Length);
            Assert.Equal(payload, echoed.ToArray());
            Assert.True(stream.BytesDeliveredDirectly > 0, "no payload went straight into the reader's buffer");
        }
    }
}
