using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Core.Tests.Libp2p;

public class MultistreamSelectTests
{
    private static CancellationToken Patience => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;

    [Fact]
    public async Task The_dialer_writes_the_header_and_first_proposal_exactly_as_the_spec_frames_them()
    {
        await using var pair = await StreamPair.OpenAsync();
        var select = MultistreamSelect.SelectAsync(pair.A, ["/noise"], Patience);
        // 0x13 = 19 = "/multistream/1.0.0\n"; 0x07 = "/noise\n" (multistream-select README, connections spec).
        var expected = Convert.FromHexString("132f6d756c746973747265616d2f312e302e300a072f6e6f6973650a");
        Assert.Equal(expected, await Bytes.ReadExactlyAsync(pair.B, expected.Length, Patience));
        await pair.B.WriteAsync(expected, Patience);
        Assert.Equal("/noise", await select);
    }

    [Fact]
    public async Task A_refused_proposal_moves_on_to_the_next_and_the_protocol_bytes_that_follow_are_left_on_the_stream()
    {
        await using var pair = await StreamPair.OpenAsync();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/b/1.0.0", "/c"], Patience);
        Assert.Equal("/b/1.0.0", await MultistreamSelect.SelectAsync(pair.A, ["/a/2.0.0", "/b/1.0.0"], Patience));
        Assert.Equal("/b/1.0.0", await listen);
        await pair.A.WriteAsync("after"u8.ToArray(), Patience);
        await pair.B.WriteAsync("reply"u8.ToArray(), Patience);
        Assert.Equal("after"u8.ToArray(), await Bytes.ReadExactlyAsync(pair.B, 5, Patience));
        Assert.Equal("reply"u8.ToArray(), await Bytes.ReadExactlyAsync(pair.A, 5, Patience));
    }

    [Fact]
    public async Task A_pipelined_dialer_gets_its_data_to_the_protocol_unread_by_the_negotiation()
    {
        await using var pair = await StreamPair.OpenAsync();
        // A lazy dialer sends header, proposal and its first data in one write, without waiting.
        await pair.A.WriteAsync((byte[])[.. Bytes.Line("/multistream/1.0.0"), .. Bytes.Line("/ipfs/ping/1.0.0"), .. "PAYLOAD"u8], Patience);
        Assert.Equal("/ipfs/ping/1.0.0", await MultistreamSelect.NegotiateAsync(pair.B, ["/ipfs/ping/1.0.0"], Patience));
        Assert.Equal("PAYLOAD"u8.ToArray(), await Bytes.ReadExactlyAsync(pair.B, 7, Patience));
        var answer = Bytes.Line("/multistream/1.0.0").Concat(Bytes.Line("/ipfs/ping/1.0.0")).ToArray();
        Assert.Equal(answer, await Bytes.ReadExactlyAsync(pair.A, answer.Length, Patience));
    }

    [Fact]
    public async Task No_common_protocol_is_NotFound_for_the_dialer()
    {
        await using var pair = await StreamPair.OpenAsync();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/x"], Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => MultistreamSelect.SelectAsync(pair.A, ["/a", "/b"], Patience));
        Assert.Equal(SecureMeshErrorKind.NotFound, e.Kind);
        pair.SocketA.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        var l = await Assert.ThrowsAsync<SecureMeshException>(() => listen);
        Assert.Equal(SecureMeshErrorKind.Network, l.Kind);
    }

    [Fact]
    public async Task The_listener_answers_ls_with_its_protocols_each_length_prefixed()
    {
        await using var pair = await StreamPair.OpenAsync();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/a", "/bb"], Patience);
        await pair.A.WriteAsync((byte[])[.. Bytes.Line("/multistream/1.0.0"), .. Bytes.Line("ls")], Patience);
        var header = Bytes.Line("/multistream/1.0.0");
        Assert.Equal(header, await Bytes.ReadExactlyAsync(pair.A, header.Length, Patience));
        // One message: (03 "/a\n") (04 "/bb\n") "\n" = 10 bytes.
        byte[] list = [10, 3, .. "/a\n"u8, 4, .. "/bb\n"u8, (byte)'\n'];
        Assert.Equal(list, await Bytes.ReadExactlyAsync(pair.A, list.Length, Patience));
        await pair.A.WriteAsync(Bytes.Line("/bb"), Patience);
        Assert.Equal("/bb", await listen);
    }

    [Fact]
    public async Task An_overlong_line_is_refused_from_its_length_alone()
    {
        await using var pair = await StreamPair.OpenAsync();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/a"], Patience);
        // Only the length (1025) is sent: the listener must not wait for (or allocate) the body.
        await pair.A.WriteAsync(Bytes.Varint(MultistreamSelect.MaxMessageLength + 1), Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => listen);
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("longer than 1024", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_huge_varint_length_is_refused_without_reading_it_all()
    {
        await using var pair = await StreamPair.OpenAsync();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/a"], Patience);
        await pair.A.WriteAsync(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F }, Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => listen);
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public async Task Endless_proposals_end_after_the_cap_with_a_protocol_error()
    {
        await using var pair = await StreamPair.OpenAsync();
        var options = new MultistreamOptions { MaxProposals = 32 };
        var listen = MultistreamSelect.NegotiateAsync(pair.B, p => p == "/wanted", ["/wanted"], options, Patience);
        var flood = new List<byte>(Bytes.Line("/multistream/1.0.0"));
        for (var i = 0; i < 40; i++)
        {
            flood.AddRange(Bytes.Line($"/unknown/{i}"));
        }
        await pair.A.WriteAsync(flood.ToArray(), Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => listen);
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("more than 32 proposals", e.Message, StringComparison.Ordinal);
        // It answered exactly 32 of them with "na" after its header, then stopped.
        var answers = Bytes.Line("/multistream/1.0.0").Concat(Enumerable.Range(0, 32).SelectMany(_ => Bytes.Line("na"))).ToArray();
        Assert.Equal(answers, await Bytes.ReadExactlyAsync(pair.A, answers.Length, Patience));
    }

    [Theory]
    [InlineData("13", "no newline")]
    [InlineData("0a", "empty message")]
    [InlineData("2f", "bad header")]
    [InlineData("ff", "invalid UTF-8")]
    [InlineData("nl", "two lines in one message")]
    [InlineData("nm", "non-minimal varint")]
    public async Task Malformed_messages_are_protocol_errors(string kind, string because)
    {
        _ = because;
        byte[] input = kind switch
        {
            "13" => [0x13, .. "/multistream/1.0.0 "u8],
            "0a" => [0x00],
            "2f" => Bytes.Line("/multistream/2.0.0"),
            "ff" => [.. Bytes.Line("/multistream/1.0.0"), 0x03, 0xC3, 0x28, 0x0A],
            "nl" => [.. Bytes.Line("/multistream/1.0.0"), 0x06, .. "/a\n/b\n"u8],
            _ => [0x93, 0x00, .. "/multistream/1.0.0\n"u8],
        };
        await using var pair = await StreamPair.OpenAsync();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/a", "/b"], Patience);
        await pair.A.WriteAsync(input, Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => listen);
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public async Task A_listener_that_answers_something_else_than_the_proposal_or_na_is_a_protocol_error()
    {
        await using var pair = await StreamPair.OpenAsync();
        var select = MultistreamSelect.SelectAsync(pair.A, ["/a", "/b"], Patience);
        await pair.B.WriteAsync((byte[])[.. Bytes.Line("/multistream/1.0.0"), .. Bytes.Line("/b")], Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => select);
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains("'/b' to the proposal '/a'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_silent_dialer_times_out_and_never_hangs()
    {
        var time = new FakeTimeProvider();
        await using var pair = await StreamPair.OpenAsync();
        var options = new MultistreamOptions { Timeout = TimeSpan.FromSeconds(10), TimeProvider = time };
        var listen = MultistreamSelect.NegotiateAsync(pair.B, p => true, null, options, Patience);
        // A slowloris: half a header, then nothing.
        await pair.A.WriteAsync(new byte[] { 0x13, (byte)'/', (byte)'m' }, Patience);
        await Task.Delay(50);
        Assert.False(listen.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(11));
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => listen.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
        Assert.Contains("timed out", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_callers_cancellation_stays_a_cancellation()
    {
        await using var pair = await StreamPair.OpenAsync();
        using var cts = new CancellationTokenSource();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/a"], cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => listen);
    }

    [Fact]
    public async Task Proposals_that_cannot_be_protocol_ids_are_refused_before_anything_is_sent()
    {
        using var stream = new MemoryStream();
        await Assert.ThrowsAsync<ArgumentException>(() => MultistreamSelect.SelectAsync(stream, ["/a\n/b"], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => MultistreamSelect.SelectAsync(stream, ["na"], CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => MultistreamSelect.SelectAsync(stream, [new string('x', 1024)], CancellationToken.None));
        Assert.Equal(0, stream.Length);
    }

    [Fact]
    public async Task A_listener_answers_a_pipelined_dialer_with_its_header_and_the_echo_in_one_yamux_frame()
    {
        var (session, peer) = await YamuxKit.AgainstRawClientAsync();
        await using var ownedSession = session;
        await using var ownedPeer = peer;
        byte[] hello = [.. Bytes.Line("/multistream/1.0.0"), .. Bytes.Line("/a")];
        await peer.SendDataAsync(1, hello, YamuxFlags.Syn);
        var stream = await session.AcceptStreamAsync().AsTask().WaitAsync(YamuxKit.Patience);
        await YamuxKit.EventuallyAsync(() => stream.BufferedBytes == hello.Length, "the dialer's header and proposal");

        Assert.Equal("/a", await MultistreamSelect.NegotiateAsync(stream, ["/a"], Patience));
        // Our header and the echo: the same bytes as the dialer's, in one data frame (one Noise message), not two.
        var (_, payload) = await peer.ExpectAsync(h => h.Type == YamuxFrameType.Data, "the answer");
        Assert.Equal(hello, payload);
    }

    [Fact]
    public async Task A_dialer_that_waits_for_the_listeners_header_before_proposing_gets_it()
    {
        await using var pair = await StreamPair.OpenAsync();
        var listen = MultistreamSelect.NegotiateAsync(pair.B, ["/a"], Patience);
        var header = Bytes.Line("/multistream/1.0.0");
        await pair.A.WriteAsync(header, Patience);
        Assert.Equal(header, await Bytes.ReadExactlyAsync(pair.A, header.Length, Patience));
        await pair.A.WriteAsync(Bytes.Line("/a"), Patience);
        Assert.Equal(Bytes.Line("/a"), await Bytes.ReadExactlyAsync(pair.A, Bytes.Line("/a").Length, Patience));
        Assert.Equal("/a", await listen);
    }

    [Fact]
    public async Task Select_or_end_is_null_for_a_clean_end_and_still_throws_for_garbage_and_a_truncated_answer()
    {
        await using (var pair = await StreamPair.OpenAsync())
        {
            var select = MultistreamSelect.SelectOrEndAsync(pair.A, ["/a"], null, Patience);
            await Bytes.ReadExactlyAsync(pair.B, Bytes.Line("/multistream/1.0.0").Length + Bytes.Line("/a").Length, Patience);
            pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            Assert.Null(await select);
        }
        await using (var pair = await StreamPair.OpenAsync())
        {
            var select = MultistreamSelect.SelectOrEndAsync(pair.A, ["/a"], null, Patience);
            await pair.B.WriteAsync((byte[])[.. Bytes.Line("/multistream/1.0.0"), 5, (byte)'/', (byte)'a'], Patience);
            pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            Assert.Equal(SecureMeshErrorKind.Protocol, (await Assert.ThrowsAsync<SecureMeshException>(() => select)).Kind);
        }
        await using (var pair = await StreamPair.OpenAsync())
        {
            var select = MultistreamSelect.SelectOrEndAsync(pair.A, ["/a"], null, Patience);
            await pair.B.WriteAsync(Bytes.Line("/multistream/2.0.0"), Patience);
            Assert.Equal(SecureMeshErrorKind.Protocol, (await Assert.ThrowsAsync<SecureMeshException>(() => select)).Kind);
        }
        await using (var pair = await StreamPair.OpenAsync())
        {
            // The plain SelectAsync keeps calling a clean end an error.
            var select = MultistreamSelect.SelectAsync(pair.A, ["/a"], Patience);
            pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            Assert.Equal(SecureMeshErrorKind.Network, (await Assert.ThrowsAsync<SecureMeshException>(() => select)).Kind);
        }
    }
}
