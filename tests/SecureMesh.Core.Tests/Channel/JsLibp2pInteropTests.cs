using System.Diagnostics;
using System.Net;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Channel;

/// <summary>
/// Handshakes against js-libp2p's own Noise code (@chainsafe/libp2p-noise, run by tests/interop/noise-peer.mjs).
/// Needs Node.js and <c>npm ci --prefix tests/interop</c>; without them these tests fail (they are never skipped).
/// </summary>
public class JsLibp2pInteropTests
{

    private sealed class NodePeer : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly List<string> _lines = [];
        private readonly Task _stdout;
        private readonly Task<string> _stderr;

        public NodePeer(params string[] args)
        {
            _process = SecureMesh.Tests.Shared.JsInterop.StartNode("noise-peer.mjs", args);
            _stdout = Task.Run(async () =>
            {
                while (await _process.StandardOutput.ReadLineAsync() is { } line)
                {
                    lock (_lines)
                    {
                        _lines.Add(line);
                    }
                }
            });
            _stderr = _process.StandardError.ReadToEndAsync();
        }

        public async Task<string> WaitForLineAsync(string prefix)
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < until)
            {
                lock (_lines)
                {
                    if (_lines.FirstOrDefault(l => l.StartsWith(prefix + " ", StringComparison.Ordinal)) is { } line)
                    {
                        return line[(prefix.Length + 1)..];
                    }
                }
                if (_process.HasExited)
                {
                    await _stdout;
                    lock (_lines)
                    {
                        if (_lines.FirstOrDefault(l => l.StartsWith(prefix + " ", StringComparison.Ordinal)) is { } last)
                        {
                            return last[(prefix.Length + 1)..];
                        }
                    }
                    Assert.Fail($"node exited ({_process.ExitCode}) before printing {prefix}: {await _stderr}");
                }
                await Task.Delay(20);
            }
            Assert.Fail($"node did not print {prefix} in time");
            return "";
        }

        public async Task AssertSucceededAsync()
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await _process.WaitForExitAsync(cts.Token);
            await _stdout;
            Assert.True(_process.ExitCode == 0, "node failed: " + await _stderr);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
            _process.Dispose();
        }
    }

    [Fact]
    public async Task Js_libp2p_dialer_completes_a_handshake_with_our_listener()
    {
        using var me = NodeIdentity.Generate();
        await using var listener = SecureListener.Start(new IPEndPoint(IPAddress.Loopback, 0), me, TestNet.ListenerOptions());
        await using var js = new NodePeer("dial", "127.0.0.1", listener.LocalEndPoint.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), me.PeerId.Text);
        var jsPeer = PeerId.Parse(await js.WaitForLineAsync("LOCAL_PEER"));

        await using var connection = await listener.AcceptAsync(TestNet.Timeout(20));
        Assert.Equal(jsPeer, connection.RemotePeerId);
        Assert.Contains("/js-interop/1", connection.RemoteProtocols);
        Assert.Equal("hello from js dialer", System.Text.Encoding.UTF8.GetString(await connection.ReceiveAsync(TestNet.Timeout(20))));
        await connection.SendAsync("hello from securemesh"u8.ToArray(), TestNet.Timeout());

        Assert.Equal(me.PeerId.Text, await js.WaitForLineAsync("REMOTE_PEER"));
        Assert.Equal(SecureChannel.ProtocolId, await js.WaitForLineAsync("REMOTE_PROTOCOLS"));
        Assert.Equal("hello from securemesh", await js.WaitForLineAsync("RECEIVED"));
        await js.AssertSucceededAsync();
    }

    [Fact]
    public async Task Our_dialer_completes_a_handshake_with_a_js_libp2p_listener()
    {
        using var me = NodeIdentity.Generate();
        await using var js = new NodePeer("listen", "0");
        var port = int.Parse(await js.WaitForLineAsync("LISTENING"), System.Globalization.CultureInfo.InvariantCulture);
        var jsPeer = PeerId.Parse(await js.WaitForLineAsync("LOCAL_PEER"));

        await using var connection = await SecureChannel.DialAsync(me, new IPEndPoint(IPAddress.Loopback, port), jsPeer, new SecureChannelOptions { HandshakeTimeout = TimeSpan.FromSeconds(15) }, TestNet.Timeout(20));
        Assert.Equal(jsPeer, connection.RemotePeerId);
        Assert.Contains("/js-interop/1", connection.RemoteProtocols);
        await connection.SendAsync("hello from securemesh"u8.ToArray(), TestNet.Timeout());
        Assert.Equal("hello from js listener", System.Text.Encoding.UTF8.GetString(await connection.ReceiveAsync(TestNet.Timeout(20))));

        Assert.Equal(me.PeerId.Text, await js.WaitForLineAsync("REMOTE_PEER"));
        Assert.Equal(SecureChannel.ProtocolId, await js.WaitForLineAsync("REMOTE_PROTOCOLS"));
        Assert.Equal("hello from securemesh", await js.WaitForLineAsync("RECEIVED"));
        await js.AssertSucceededAsync();
    }
}
