import { onMounted, onUnmounted } from 'vue';

/**
 * Runs `tick` now and every `intervalMs` while the page is visible (a hidden tab does not poll), and once
 * more when it becomes visible again. For components only.
 */
export function usePoll(tick: () => Promise<void> | void, intervalMs: number): void {
  let timer: ReturnType<typeof setInterval> | undefined;
  let running = false;
  const run = async () => {
    if (running || document.visibilityState === 'hidden') return;
    running = true;
    try {
      await tick();
    } finally {
      running = false;
    }
  };
  const onVisibility = () => {
    if (document.visibilityState === 'visible') void run();
  };
  onMounted(() => {
    void run();
    timer = setInterval(() => void run(), intervalMs);
    document.addEventListener('visibilitychange', onVisibility);
  });
  onUnmounted(() => {
    clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisibility);
  });
}
