using Microsoft.Extensions.Time.Testing;

namespace SecureMesh.Node.Tests;

/// <summary>Issue 20: periodic loops stop by disposing their timer, not by cancelling the tick wait (no exception).</summary>
public sealed class TimerStopTests
{
    [Fact]
    public async Task A_pending_tick_wait_ends_false_when_the_token_is_cancelled_and_a_later_one_at_once()
    {
        var time = new FakeTimeProvider();
        using var cts = new CancellationTokenSource();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        using var stop = timer.StopOn(cts.Token);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(await timer.WaitForNextTickAsync());
        var pending = timer.WaitForNextTickAsync();
        Assert.False(pending.IsCompleted);
        await cts.CancelAsync();
        Assert.False(await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(await timer.WaitForNextTickAsync());
    }

    [Fact]
    public async Task A_token_cancelled_before_the_loop_starts_ends_it_at_its_first_wait()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1));
        using var stop = timer.StopOn(cts.Token);
        Assert.False(await timer.WaitForNextTickAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
