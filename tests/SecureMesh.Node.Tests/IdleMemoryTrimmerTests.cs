using Microsoft.Extensions.Time.Testing;

namespace SecureMesh.Node.Tests;

public sealed class IdleMemoryTrimmerTests
{
    private const long MB = 1L << 20;

    private sealed class Counter
    {
        public long Allocated { get; set; }

        public int Trims { get; set; }

        public int Reads { get; set; }

        public long Read()
        {
            Reads++;
            return Allocated;
        }
    }

    private static (Counter Counter, IdleMemoryTrimmer Trimmer) Create()
    {
        var counter = new Counter();
        return (counter, new IdleMemoryTrimmer(counter.Read, () => counter.Trims++));
    }

    [Fact]
    public void A_busy_node_is_never_trimmed_and_a_quiet_one_once_after_the_burst()
    {
        var (counter, trimmer) = Create();
        for (var i = 0; i < 10; i++)
        {
            // A transfer or a burst of handshakes: far more than the quiet threshold every interval.
            counter.Allocated += 50 * MB;
            Assert.False(trimmer.Check());
        }
        Assert.Equal(0, counter.Trims);

        counter.Allocated += IdleMemoryTrimmer.QuietBytes / 4;
        Assert.True(trimmer.Check());
        Assert.Equal(1, counter.Trims);

        // Still idle (keep-alives only): no more full collections until another WorthBytes has been allocated.
        for (var i = 0; i < (IdleMemoryTrimmer.WorthBytes / (IdleMemoryTrimmer.QuietBytes / 4)) - 1; i++)
        {
            counter.Allocated += IdleMemoryTrimmer.QuietBytes / 4;
            Assert.False(trimmer.Check());
        }
        Assert.Equal(1, counter.Trims);
    }

    [Fact]
    public void A_quiet_node_that_allocated_little_since_its_last_trim_is_left_alone()
    {
        // Each step a quiet interval's allocation (below QuietBytes).
        var step = IdleMemoryTrimmer.QuietBytes * 3 / 4;
        var (counter, trimmer) = Create();
        counter.Allocated += IdleMemoryTrimmer.WorthBytes - (3 * step);
        Assert.False(trimmer.Check());
        counter.Allocated += step;
        Assert.False(trimmer.Check());
        Assert.Equal(0, counter.Trims);
        // Slow allocation adds up: once a young generation's worth is reached, a quiet interval trims.
        counter.Allocated += step;
        Assert.False(trimmer.Check());
        counter.Allocated += step + 1;
        Assert.True(trimmer.Check());
        Assert.Equal(1, trimmer.Trims);
    }

    [Fact]
    public void Each_burst_followed_by_quiet_is_trimmed_once()
    {
        var (counter, trimmer) = Create();
        for (var burst = 1; burst <= 3; burst++)
        {
            counter.Allocated += 40 * MB;
            Assert.False(trimmer.Check());
            Assert.True(trimmer.Check());
            Assert.False(trimmer.Check());
            Assert.Equal(burst, counter.Trims);
        }
    }

    [Fact]
    public async Task It_checks_on_the_clock_it_is_given_and_stops_when_cancelled()
    {
        var (counter, trimmer) = Create();
        var time = new FakeTimeProvider();
        using var stop = new CancellationTokenSource();
        var run = trimmer.RunAsync(time, stop.Token);

        counter.Allocated += 40 * MB;
        var reads = counter.Reads;
        time.Advance(IdleMemoryTrimmer.Interval);
        await WaitForAsync(() => counter.Reads > reads);
        Assert.Equal(0, counter.Trims);
        // The next quiet tick trims.
        time.Advance(IdleMemoryTrimmer.Interval);
        await WaitForAsync(() => counter.Trims == 1);

        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
        counter.Allocated += 40 * MB;
        time.Advance(IdleMemoryTrimmer.Interval);
        time.Advance(IdleMemoryTrimmer.Interval);
        Assert.Equal(1, counter.Trims);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }
        Assert.True(condition());
    }
}
