using SecureMesh.Core.Channel;
using SecureMesh.Fuzz.Targets;

namespace SecureMesh.Core.Tests.Channel;

/// <summary>
/// Issue 16 (idle memory, handshakes): a connection that only exchanges small frames reads them with a small pooled
/// buffer; a large frame or a stream of data moves it to the large one, and every frame comes out whole either way.
/// </summary>
public sealed class FrameReaderBufferTests
{
    [Fact]
    public async Task Small_frames_read_a_few_at_a_time_keep_the_small_buffer()
    {
        var frames = Enumerable.Range(1, 50).Select(i => Body(i * 7 % 300 + 1, i)).ToList();
        using var reader = new FrameReader(new FrameTarget.TrickleStream(Encode(frames), perRead: 512));
        foreach (var expected in frames)
        {
            Assert.Equal(expected, (await reader.ReadFrameAsync(CancellationToken.None))!.Value.ToArray());
            Assert.Equal(FrameReader.SmallBufferSize, reader.BufferLength);
        }
        Assert.Null(await reader.ReadFrameAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_read_that_fills_the_small_buffer_moves_to_the_large_one()
    {
        var frames = Enumerable.Range(1, 100).Select(i => Body(1000, i)).ToList();
        using var reader = new FrameReader(new FrameTarget.TrickleStream(Encode(frames), perRead: int.MaxValue));
        foreach (var expected in frames)
        {
            Assert.Equal(expected, (await reader.ReadFrameAsync(CancellationToken.None))!.Value.ToArray());
            Assert.Equal(FrameReader.LargeBufferSize, reader.BufferLength);
        }
    }

    [Fact]
    public async Task A_frame_larger_than_the_small_buffer_comes_out_whole_from_the_large_one()
    {
        List<byte[]> frames = [Body(10, 1), Body(FrameReader.MaxFrameLength, 2), Body(3, 3), Body(FrameReader.SmallBufferSize - 1, 4)];
        using var reader = new FrameReader(new FrameTarget.TrickleStream(Encode(frames), perRead: 1000));
        Assert.Equal(frames[0], (await reader.ReadFrameAsync(CancellationToken.None))!.Value.ToArray());
        Assert.Equal(FrameReader.SmallBufferSize, reader.BufferLength);
        foreach (var expected in frames.Skip(1))
        {
            Assert.Equal(expected, (await reader.ReadFrameAsync(CancellationToken.None))!.Value.ToArray());
        }
        Assert.Equal(FrameReader.LargeBufferSize, reader.BufferLength);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(777)]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    public async Task Frames_of_every_size_straddling_the_buffer_ends_come_out_whole(int maxRead)
    {
        var random = new Random(16);
        var frames = Enumerable.Range(0, 400).Select(i => Body(random.Next(0, i % 10 == 0 ? FrameReader.MaxFrameLength + 1 : 5000), i)).ToList();
        using var reader = new FrameReader(new FrameTarget.TrickleStream(Encode(frames), maxRead));
        foreach (var expected in frames)
        {
            Assert.Equal(expected, (await reader.ReadFrameAsync(CancellationToken.None))!.Value.ToArray());
        }
        Assert.Null(await reader.ReadFrameAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_stream_ending_inside_a_frame_in_the_small_buffer_is_a_protocol_error()
    {
        var bytes = Encode([Body(100, 1)]);
        using var reader = new FrameReader(new FrameTarget.TrickleStream(bytes[..^1], perRead: 64));
        var error = await Assert.ThrowsAsync<SecureMeshException>(async () => await reader.ReadFrameAsync(CancellationToken.None));
        Assert.Equal(SecureMeshErrorKind.Protocol, error.Kind);
    }

    private static byte[] Body(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)(i * 31 + seed)).ToArray();

    private static byte[] Encode(IEnumerable<byte[]> frames)
    {
        using var output = new MemoryStream();
        foreach (var frame in frames)
        {
            output.WriteByte((byte)(frame.Length >> 8));
            output.WriteByte((byte)frame.Length);
            output.Write(frame);
        }
        return output.ToArray();
    }
}
